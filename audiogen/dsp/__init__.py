"""Signal basics that both voice/ (levelling each clip) and audio/ (mixing a session) need.

`ffmpeg` (the bundled binary: decode, resample, the internal sample rate), `loudness` (a numpy
BS.1770 meter) and `limiter` (look-ahead peak limiting). It sits between plan/ and voice/ because a clip
is levelled when it is made, below the session stage; it imports only routine/ (for its errors).
"""
