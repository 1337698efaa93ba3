"""Thơ bot: chat adapters (Telegram, Discord, console) and the SQLite store."""
