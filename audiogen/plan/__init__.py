"""Pure planning: a routine and clip lengths in, a timeline of events and chapters out.

`planner` lays out one session (and estimates speech it has not heard yet); `variants` stretches or
shrinks a routine's silences to a target length. No audio library, no engine, no file I/O: everything
is computed from data, so `audiogen plan` and `check` need nothing installed beyond the routine floor.
"""
