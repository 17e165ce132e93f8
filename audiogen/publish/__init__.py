"""Publishing: what a listener's phone reads. Tags and chapters in the MP3 (`tags`), the cover (`cover`),
synced lyrics (`lyrics`), and per library the playlist (`playlist`), the podcast feed (`feed`), the web
page (`page`, with its HTML, CSS and JavaScript in `templates/`), all three at once (`indexes`), and the
read-only server for phones (`serve`). Imports audio/ and the floors below it, never build/.
"""
