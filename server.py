"""``python server.py``: serve with the settings from the environment (see runtime/bootstrap.py)."""

from runtime.bootstrap import main

if __name__ == "__main__":
    main()
