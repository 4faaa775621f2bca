"""Process managers: react to events and issue commands (never write views). None yet."""
