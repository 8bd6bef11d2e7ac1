# Independent computation of PlanDigest vectors from the byte layout documented in docs/DETERMINISM.md
# ("Plan digest"), with nothing but Python's standard library. Run: python3 plan_digest.py
# The test Core.Digest "byte layout pinned by an independent implementation" holds the printed hex digests.
import hashlib
import struct

def digest(plans, plan_version=1):
    h = hashlib.sha256()
    h.update(b"samplers.plan-digest/1")           # ASCII tag, no length, no terminator
    h.update(struct.pack("<i", plan_version))      # PlanVersion, int32 little-endian
    for seed, epoch, batch, global_batch, indices, ordinals in plans:
        assert len(indices) == len(ordinals)
        # seed uint64, epoch int32, rank-local batch id int32, global batch id int32, row count int32
        h.update(struct.pack("<Qiiii", seed, epoch, batch, global_batch, len(indices)))
        for i, o in zip(indices, ordinals):
            h.update(struct.pack("<ii", i, o))     # per row: source index, class ordinal
    return h.hexdigest()

EMPTY = []
ONE = [(0x0123456789ABCDEF, 2, 3, 7, [5, 1, 9, 4], [0, 0, 2, 2])]
TWO = ONE + [(18446744073709551615, 0, 0, 1, [70000, 3], [1, 1])]

# A real plan: the committed golden point "independent-sharded-rank1-of-3" (config 4x2, 10 steps, rank 1 of 3,
# seed 7, epoch 1, local batch 2, so global batch 2 * 3 + 1 = 7), read from the golden file.
import json, os
golden = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Golden", "plans-v1.json")))
point = next(p for p in golden["points"] if p["name"] == "independent-sharded-rank1-of-3")
SHARDED = [(int(point["seed"]), point["epoch"], point["batchId"], point["batchId"] * 3 + 1, point["indices"], point["classOrdinals"])]

print("empty", digest(EMPTY))
print("one  ", digest(ONE))
print("two  ", digest(TWO))
print("sharded-golden-point", digest(SHARDED))
