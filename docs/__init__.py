"""Documentation; ``docs.examples`` holds the runnable code the guides show."""
