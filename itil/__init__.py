"""The engine's composition: configuration, application service, web API, command line."""
