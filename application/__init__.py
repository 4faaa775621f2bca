"""The application floor: command handlers per area, group commit, the event-sourced store.

Knows no HTTP and no Kafka."""
