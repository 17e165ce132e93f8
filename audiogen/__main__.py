import sys

try:
    from audiogen.cli import main
except KeyboardInterrupt:  # Ctrl-C while the program is still starting
    sys.exit(130)

main()
