"""``python -m kineret_asp`` runs the kineret-asp command."""

from .cli import main

if __name__ == "__main__":
    main()
