"""The ITIL domain: event-sourced aggregates, their events and their rules. Pure: no I/O, no clock."""
