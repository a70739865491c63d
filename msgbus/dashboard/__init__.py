"""The live status page: latest probe results per site and metric, JSON API, live updates."""
