"""The long-running service: schedules, the daemon lifecycle, reload, systemd, mail."""
