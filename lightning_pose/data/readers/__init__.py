"""Readers: annotation files in the formats users download -> ImageRecord lists."""
