"""Clinical NLP: sections, sentences, abbreviations, mentions, assertions and attributes."""
