"""Thơ bot's engine: PoemRequest -> Poem, on any backend. Knows nothing of chat platforms."""
