"""Voices: every phrase of a routine as a levelled clip in the cache, synthesised once.

`engines/` (gTTS, Piper, espeak-ng: one file each behind the `Engine` protocol, and their registry),
`narrate` (the `Narrator`: engine choice for `auto`, filling the cache), `clips` (a clip's cache form and
levels), `cache` (the content-addressed clip cache), `pool` (worker processes for the offline engines),
`threads` (threads and a rate limit for the network engine), `report` (`audiogen voices`).
Imports dsp/, plan/ and routine/ only.
"""
