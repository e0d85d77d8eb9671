"""A deterministic embedding for tests (store.index.embed "./graphs/embed.py:embed"): bag of words hashed
into DIMS buckets, normalized; texts sharing words are similar, as with a real model."""
import hashlib
import math

DIMS = 64


def embed(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in text.lower().split():
            vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        vectors.append([x / norm for x in vector])
    return vectors
