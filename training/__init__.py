"""Training: corpus -> tokenizer -> GPT-2 -> evaluation -> model directory."""
