"""The engine names a routine may ask for: the routine format's contract, said once.

The voice floor's registry (`audiogen.voice.engines.ENGINES`) implements exactly these names.
"""

#: Every engine, in the order `audiogen voices` lists them.
ENGINE_NAMES: tuple[str, ...] = ("gtts", "piper", "espeak")
#: What `voice.engine` and `--engine` accept.
ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINE_NAMES)
