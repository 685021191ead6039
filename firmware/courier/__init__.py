"""The courier: the monitor's storage and network, in a process of its own (see .service)."""
