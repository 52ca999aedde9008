"""The savings-goal example of ``docs/extending.md``: a new aggregate, projection and API."""
