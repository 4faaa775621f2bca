"""The HTTP adapter: one thin module per area (parse, command or query, reply) and the API that serves them."""
