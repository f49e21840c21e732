"""The trainers: corpus, tokeniser, GPT decoder, Lightning modules, pilot sweep.

Only this package and ``train.py`` import torch and Lightning; ``climb_bayes`` never does.
"""
