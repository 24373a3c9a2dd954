"""
C{python -m samptwist}: the C{samptwist} command.
"""

from samptwist.cli import main

if __name__ == "__main__":
    main()
