"""Audio: a planned session and its clips in, an encoded file out, in bounded memory.

`session` (a session's sounds and clips, and `render_audio`), `mix` (voice, cues and the ducked bed, block
by block), `leveling` (the gains that reach the loudness target, solved before mixing), `encode`
(streaming into ffmpeg's encoder), `sounds` (built-in cues and beds, user sound files).
Imports voice/, dsp/, plan/ and routine/.
"""
