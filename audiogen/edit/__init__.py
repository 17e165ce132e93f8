"""`audiogen edit`: a local page to write a routine with live checks, its timeline and a spoken preview.

Sits between the API and the build floor: it may use build/, publish/, plan/, voice/ and routine/.
"""
