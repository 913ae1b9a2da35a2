"""Spanish text analysis (platform): sentiment by lexicon, admin keyword lists.

``ivr.text.normalise`` folds, tokenises and stems; ``ivr.text.sentiment``
scores a text with the lexicon shipped in ``lexicon_es.yaml``;
``ivr.text.keywords`` holds the keyword lists operations edit.
"""
