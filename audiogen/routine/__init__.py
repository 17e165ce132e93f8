"""The bottom floor: the routine format and what every floor above shares.

`model` (the pydantic routine model and JSON Schema), `loader` (YAML with file:line:column errors),
`library` (a library folder's `audiogen.yaml`; `walk` finds its routine files), `durations` and
`markup` (the little languages inside a routine), `soundref` (naming a built-in sound or a file), `slug`,
`scaffold` (`audiogen new`), and the two basics used everywhere: `errors` (typed, located errors) and
`atomic` (crash-safe file writes). Imports nothing else of audiogen.
"""
