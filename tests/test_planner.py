"""The pure planner: exact lengths, growth with warnings, chapters, slots and reminders."""

from audiogen.plan.planner import GAP_MS, LEAD_IN_MS, TAIL_MS, plan_routine, spoken_texts
from audiogen.routine.loader import parse_routine


def plan(text, speech=lambda t: 1000, sound=lambda s: 500):
    return plan_routine(parse_routine(text, "r.yaml"), speech, sound)


def test_fixed_duration_steps_are_exact():
    p = plan("title: t\ncue: none\nsteps:\n" + "".join(
        f"  - title: s{i}\n    say: Step {i}.\n    duration: 30s\n" for i in range(5)))
    lengths = [c.length_ms for c in p.chapters]
    assert lengths[1:-1] == [30000] * 3
    assert lengths[0] == LEAD_IN_MS + 30000 and lengths[-1] == 30000 + TAIL_MS
    assert p.length_ms == LEAD_IN_MS + 5 * 30000 + TAIL_MS
    assert not p.warnings


def test_hour_of_fixed_steps_does_not_drift():
    p = plan("title: t\nintro: Hi.\noutro: Bye.\nsteps:\n" + "".join(
        f"  - title: s{i}\n    say: Step {i}.\n    duration: 1m\n" for i in range(60)), speech=lambda t: 1234)
    steps = [c for c in p.chapters if c.kind == "step"]
    assert all(c.length_ms == 60000 for c in steps)
    assert steps[-1].end_ms - steps[0].start_ms == 3_600_000


def test_overlong_speech_grows_the_step_and_warns():
    p = plan("title: t\ncue: none\nsteps:\n  - title: Long\n    say: x\n    duration: 5s\n  - title: b\n    hold: 1\n",
             speech=lambda t: 8000)
    assert len(p.warnings) == 1
    w = p.warnings[0]
    assert w.chapter == "Long" and w.planned_ms == 5000 and w.real_ms == 8000 + GAP_MS
    assert p.chapters[0].length_ms == LEAD_IN_MS + 8000 + GAP_MS
    speech = [e for e in p.events if e.kind == "speech"]
    assert speech[0].length_ms == 8000  # never cut


def test_sides_make_a_chapter_each_with_prompt_first():
    p = plan("""
title: t
cue: none
steps:
  - title: Jaw
    say: Glide.
    duration: 20s
    sides: [left, right]
    side_prompt: Now the {side} side.
""")
    titles = [c.title for c in p.chapters]
    assert titles == ["Jaw (left)", "Jaw (right)"]
    right = p.chapters[1]
    assert right.length_ms == 20000 + TAIL_MS
    first = next(e for e in p.events if e.chapter == 1 and e.kind == "speech")
    assert first.text == "Now the right side." and first.start_ms == right.start_ms


def test_repeat_slots_start_every_interval_with_counts():
    p = plan("title: t\ncue: none\nsteps:\n  - title: Strokes\n    repeat: 4\n    every: 5s\n")
    counts = [e for e in p.events if e.role == "count"]
    assert [e.text for e in counts] == ["One", "Two", "Three", "Four"]
    assert [b.start_ms - a.start_ms for a, b in zip(counts, counts[1:], strict=False)] == [5000] * 3


def test_repeat_without_count_uses_ticks():
    p = plan("title: t\ncue: none\nsteps:\n  - title: S\n    repeat: 3\n    every: 2s\n    count: false\n")
    ticks = [e for e in p.events if e.kind == "cue"]
    assert [e.sound for e in ticks] == ["tick"] * 3


def test_repeat_with_duration_shares_it_out():
    p = plan("title: t\ncue: none\nsteps:\n  - title: S\n    repeat: 4\n    duration: 20s\n  - title: e\n    hold: 1\n")
    counts = [e for e in p.events if e.role == "count"]
    assert counts[1].start_ms - counts[0].start_ms == 5000
    assert p.chapters[0].length_ms == LEAD_IN_MS + 20000


def test_reminders_land_at_halfway_and_before_the_end():
    p = plan("""
title: t
cue: none
steps:
  - title: Hold
    say: Hold.
    duration: 1m
    remind: {halfway: true, remaining: [10s]}
  - title: Next
    hold: 1
""")
    start = p.chapters[0].start_ms + LEAD_IN_MS
    rem = {e.text: e.start_ms - start for e in p.events if e.role == "reminder"}
    assert rem == {"Halfway.": 30000, "Ten seconds left.": 50000}
    assert p.chapters[0].length_ms == LEAD_IN_MS + 60000


def test_custom_phrases_are_used():
    p = plan("""
title: t
language: es
cue: none
phrases: {halfway: "A mitad.", remaining: "Quedan {n} segundos.", counts: [uno, dos]}
steps:
  - title: S
    repeat: 3
    every: 3s
  - title: H
    duration: 30s
    remind: {halfway: true, remaining: [10s]}
""")
    texts = [e.text for e in p.events if e.kind == "speech"]
    assert texts == ["uno", "dos", "3", "A mitad.", "Quedan 10 segundos."]


def test_markup_pauses_and_cues():
    p = plan("title: t\ncue: none\nsteps:\n  - title: S\n    say: One. [pause 2s] Two. [cue bell] Three.\n")
    ev = [e for e in p.events if e.kind != "silence"]
    assert [(e.kind, e.text or e.sound) for e in ev] == [
        ("speech", "One."), ("speech", "Two."), ("cue", "bell"), ("speech", "Three.")]
    assert ev[1].start_ms - ev[0].end_ms == 2000
    assert ev[3].start_ms == ev[2].end_ms


def test_step_cue_starts_every_run_and_intro_outro_are_chapters():
    p = plan("title: t\nintro: Hello.\noutro: Bye.\ncue: gong\nsteps:\n  - title: S\n    say: x\n    sides: [a, b]\n")
    assert [c.kind for c in p.chapters] == ["intro", "step", "step", "outro"]
    for ch in p.chapters[1:3]:
        first = next(e for e in p.events if e.chapter == p.chapters.index(ch) and e.kind != "silence")
        assert first.kind == "cue" and first.sound == "gong" and first.start_ms == ch.start_ms


def test_chapters_tile_the_session_and_events_are_ordered():
    p = plan("title: t\nintro: Hi.\nsteps:\n  - title: A\n    say: a\n    hold: 3s\n  - title: B\n    say: b\n")
    assert p.chapters[0].start_ms == 0 and p.chapters[-1].end_ms == p.length_ms
    for a, b in zip(p.chapters, p.chapters[1:], strict=False):
        assert a.end_ms == b.start_ms
    starts = [e.start_ms for e in p.events]
    assert starts == sorted(starts)


def test_spoken_texts_are_distinct():
    r = parse_routine("title: t\nsteps:\n  - title: A\n    say: Same.\n  - title: B\n    say: Same.\n", "r")
    assert spoken_texts(r) == ["Same."]
