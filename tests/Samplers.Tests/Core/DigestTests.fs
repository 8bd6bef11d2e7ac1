/// PlanDigest's byte layout, pinned by vectors from an independent implementation: the Python script
/// tests/Samplers.Tests/Core/vectors/plan_digest.py builds the bytes documented in docs/DETERMINISM.md ("Plan digest")
/// with struct.pack and hashes them with hashlib. Its text, for the record:
///
///   def digest(plans, plan_version=1):
///       h = hashlib.sha256()
///       h.update(b"samplers.plan-digest/1")
///       h.update(struct.pack("<i", plan_version))
///       for seed, epoch, batch, global_batch, indices, ordinals in plans:
///           h.update(struct.pack("<Qiiii", seed, epoch, batch, global_batch, len(indices)))
///           for i, o in zip(indices, ordinals):
///               h.update(struct.pack("<ii", i, o))
///       return h.hexdigest()
///
/// The class ordinals differ from the indices in every vector, so a digest that stopped hashing them (or swapped
/// them, or dropped the global batch id, the row count or the version) fails here.
module Samplers.Tests.Core.DigestTests

open System
open Expecto
open Samplers
open Samplers.Imaging
open Samplers.Tfds
open Samplers.Core

let private add (d: PlanDigest) (seed: uint64, epoch: int, batch: int, globalBatch: int, indices: int[], ordinals: int[]) =
    d.Add({ Seed = seed; Epoch = epoch; BatchId = batch }, globalBatch, ReadOnlySpan indices, ReadOnlySpan ordinals)

let private digestOf plans =
    use d = new PlanDigest()
    for p in plans do add d p
    d.Finish()

let private one = [ (0x0123456789ABCDEFUL, 2, 3, 7, [| 5; 1; 9; 4 |], [| 0; 0; 2; 2 |]) ]
let private two = one @ [ (UInt64.MaxValue, 0, 0, 1, [| 70000; 3 |], [| 1; 1 |]) ]

[<Tests>]
let tests =
    testList "Core.Digest" [
        testCase "byte layout pinned by an independent implementation (vectors/plan_digest.py)" <| fun () ->
            // python3 tests/Samplers.Tests/Core/vectors/plan_digest.py
            Expect.equal (digestOf []) "e0a02912bb58f46d929741953bd457e821875d78ceed28fcc43e2e6d803ae0fd" "no plan: tag and PlanVersion only"
            Expect.equal (digestOf one) "f814226ecfbe8431488a2b1073758e0f820a8e4030eae808584abbee419f2b23" "one plan"
            Expect.equal (digestOf two) "d70609ffa6eddb6ef4009206d1a5af18a054fb9890ff4ee18f65dda157803eb2" "two plans, max seed"

        testCase "Compute over a real sharded plan equals the script's digest of the committed golden point" <| fun () ->
            // The script reads "independent-sharded-rank1-of-3" from Golden/plans-v1.json: 4x2, 10 steps, rank 1 of 3,
            // seed 7, epoch 1, local batch 2 (global 7). Here the planner computes the plan itself.
            let index = ClassIndex.Build(ReadOnlySpan GoldenTests.labels)
            let planner = Planner(PlanConfig(4, 2, 10, SamplingMode.Independent, 1, 3), index)
            Expect.equal (PlanDigest.Compute(planner, 7UL, 1, 1, 2, 1)) "903a2d5fa90d6bddc5767058f704c66c458ae2005c703b6d8629caacd71d84e2" "digest"

        testCase "every field counts: changing any one changes the digest" <| fun () ->
            let baseDigest = digestOf one
            let s, e, b, g, i, o = one.Head
            for variant in [ (s + 1UL, e, b, g, i, o); (s, e + 1, b, g, i, o); (s, e, b + 1, g, i, o); (s, e, b, g + 1, i, o)
                             (s, e, b, g, [| 5; 1; 9; 5 |], o); (s, e, b, g, i, [| 0; 0; 2; 3 |]); (s, e, b, g, o, i) ] do
                Expect.notEqual (digestOf [ variant ]) baseDigest $"variant {variant}"
    ]
