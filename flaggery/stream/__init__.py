"""The change stream: each server process turns its own snapshot feed into Server-Sent Events,
fanned out in process (no database query per client; only a resume beyond the in-memory backlog
reads the change log once)."""
