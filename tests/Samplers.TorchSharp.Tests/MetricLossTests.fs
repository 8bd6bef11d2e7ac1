/// The triplet and supervised contrastive losses (values worked by hand, the reference's mining and masks, gradients)
/// and the tensor overload of the retrieval metrics.
module Samplers.TorchSharp.Tests.MetricLossTests

open System
open Expecto
open TorchSharp
open Samplers.Evaluation
open Samplers.TorchSharp
open Samplers.Tests.TestUtil

let private tol = { absolute = 2e-6; relative = 1e-5 }

let private values (t: torch.Tensor) = t.detach().data<float32>().ToArray()

/// Five unit vectors: e0 = (1, 0), e1 = (0.6, 0.8) of class 0; e2 = (0.8, 0.6), e3 = (0, 1) of class 1; e4 = (-1, 0)
/// of class 2, alone in the batch. Cosine distances 1 - e·e': d01 = 0.4, d02 = 0.2, d03 = 1, d04 = 2, d12 = 0.04,
/// d13 = 0.2, d14 = 1.6, d23 = 0.4, d24 = 1.8, d34 = 1.
let fivePoints () =
    torch.tensor([| 1f; 0f; 0.6f; 0.8f; 0.8f; 0.6f; 0f; 1f; -1f; 0f |]).reshape(5L, 2L), torch.tensor([| 0L; 0L; 1L; 1L; 2L |])

let private softplus (x: float) = Math.Log(1.0 + Math.Exp x)

let private expectAll (actual: float32[]) (expected: float[]) =
    Expect.equal actual.Length expected.Length "one value per anchor"
    for i in 0 .. expected.Length - 1 do
        Expect.floatClose tol (float actual[i]) expected[i] $"anchor {i}"

/// Descends on free embeddings and returns (first, last) loss.
let private descend (loss: torch.Tensor -> torch.Tensor -> torch.Tensor) =
    torch.manual_seed 3L |> ignore
    let raw = torch.randn([| 12L; 8L |]).requires_grad_(true)
    let y = torch.tensor([| 0L; 0L; 0L; 1L; 1L; 1L; 2L; 2L; 2L; 3L; 3L; 3L |])
    let value () = loss (torch.nn.functional.normalize(raw, p = 2.0, dim = 1L)) y
    let first = value().item<float32>()
    let l0 = value ()
    l0.backward()
    let g = raw.grad.detach().clone()
    Expect.isTrue (g.isfinite().all().item<bool>()) "finite gradient"
    Expect.isGreaterThan (g.abs().sum().item<float32>()) 0f "a gradient reaches every parameter's tensor"
    for _ in 1 .. 60 do
        let l = value ()
        raw.grad.zero_() |> ignore
        l.backward()
        use _ = torch.no_grad()
        let step : torch.Tensor = raw.grad * 0.5f
        raw.sub_(step) |> ignore
    first, value().item<float32>()

let tripletTests =
    testList "triplet loss" [
        test "the reference's defaults: cosine, hard positives, semi-hard negatives, soft margin" {
            let l = TripletLoss()
            Expect.equal (l.Distance, l.PositiveMining, l.NegativeMining, l.Margin) (MetricDistance.Cosine, PositiveMining.Hard, NegativeMining.SemiHard, Nullable()) "defaults"
        }

        test "semi-hard negatives, soft margin, worked by hand (a class alone in the batch)" {
            // Hard positive p, semi-hard negative n = the nearest negative beyond p:
            // a0: p = d01 = 0.4; negatives 0.2, 1, 2; beyond 0.4: 1, 2 -> n = 1.    softplus(-0.6)
            // a1: p = 0.4; negatives 0.04, 0.2, 1.6 -> n = 1.6.                      softplus(-1.2)
            // a2: p = d23 = 0.4; negatives 0.2, 0.04, 1.8 -> n = 1.8.                softplus(-1.4)
            // a3: p = 0.4; negatives 1, 0.2, 1 -> n = 1.                              softplus(-0.6)
            // a4 (class 2 alone): no positive: masked max = row min - 1e-6 = d44 - 1e-6 = -1e-6; every negative is
            //   beyond it, nearest d43 = 1 (its own row's 0 is no negative).       softplus(-1.000001)
            let e, y = fivePoints ()
            let per = TripletLoss().PerAnchor(e, y) |> values
            expectAll per [| softplus -0.6; softplus -1.2; softplus -1.4; softplus -0.6; softplus -1.000001 |]
            Expect.floatClose tol (float (TripletLoss().Forward(e, y).item<float32>())) (Array.averageBy float per) "the mean over anchors"
        }

        test "batch-hard (hard negatives) with margin 1, worked by hand" {
            // a0: 0.4 - 0.2 + 1 = 1.2; a1: 0.4 - 0.04 + 1 = 1.36; a2: 0.4 - 0.04 + 1 = 1.36; a3: 0.4 - 0.2 + 1 = 1.2;
            // a4: -1e-6 - min(2, 1.6, 1.8, 1) + 1 = -1e-6 -> 0.
            let e, y = fivePoints ()
            let per = TripletLoss(NegativeMining = NegativeMining.Hard, Margin = Nullable 1.0).PerAnchor(e, y) |> values
            expectAll per [| 1.2; 1.36; 1.36; 1.2; 0.0 |]
            // Semi-hard with margin 1: a0: 0.4 - 1 + 1 = 0.4; a1: -0.2 -> 0; a2: -0.4 -> 0; a3: 0.4; a4: 0.
            let semi = TripletLoss(Margin = Nullable 1.0).PerAnchor(e, y) |> values
            expectAll semi [| 0.4; 0.0; 0.0; 0.4; 0.0 |]
            // Easy negatives (the farthest), soft margin: a0: softplus(0.4 - 2), a1: softplus(0.4 - 1.6), a2: softplus(0.4 - 1.8),
            // a3: softplus(0.4 - 1), a4: softplus(-1e-6 - 2).
            let easy = TripletLoss(NegativeMining = NegativeMining.Easy).PerAnchor(e, y) |> values
            expectAll easy [| softplus -1.6; softplus -1.2; softplus -1.4; softplus -0.6; softplus -2.000001 |]
        }

        test "Euclidean distance, easy and hard positives, the semi-hard fallback, worked by hand" {
            // 1-D points 0, 1, 3 (class 0) and 2.5 (class 1). Anchor 0: positives 1, 3; the one negative 2.5.
            //   Hard positive 3: no negative beyond 3, so semi-hard falls back to the farthest negative 2.5: softplus(0.5).
            //   Easy positive 1: softplus(1 - 2.5).
            // Anchor 3 (class 1 alone): positive -1e-6 (row min 0 minus 1e-6), nearest negative d32 = 0.5: softplus(-0.500001).
            let e = torch.tensor([| 0f; 1f; 3f; 2.5f |]).reshape(4L, 1L)
            let y = torch.tensor([| 0L; 0L; 0L; 1L |])
            let hard = TripletLoss(Distance = MetricDistance.Euclidean).PerAnchor(e, y) |> values
            Expect.floatClose tol (float hard[0]) (softplus 0.5) "anchor 0, hard positive, semi-hard fallback"
            Expect.floatClose tol (float hard[3]) (softplus -0.500001) "anchor 3, alone"
            let easy = TripletLoss(Distance = MetricDistance.Euclidean, PositiveMining = PositiveMining.Easy).PerAnchor(e, y) |> values
            Expect.floatClose tol (float easy[0]) (softplus -1.5) "anchor 0, easy positive"
            // Anchor 1: positives d10 = 1, d12 = 2 (hard 2); negative 1.5 is not beyond 2: fallback 1.5 -> softplus(0.5).
            Expect.floatClose tol (float hard[1]) (softplus 0.5) "anchor 1"
        }

        test "gradients flow and descent lowers the loss (batch-hard and semi-hard, margin and soft)" {
            for loss in [ TripletLoss(); TripletLoss(NegativeMining = NegativeMining.Hard); TripletLoss(Margin = Nullable 0.2); TripletLoss(Distance = MetricDistance.Euclidean) ] do
                let first, last = descend (fun e y -> loss.Forward(e, y))
                Expect.isLessThan last first $"{loss.NegativeMining} {loss.Margin} {loss.Distance}: loss fell from {first} to {last}"
        }

        test "shapes that do not fit are refused" {
            let e, _ = fivePoints ()
            let ex = throwsWith<ArgumentException> (fun () -> TripletLoss().Forward(e, torch.tensor([| 0L; 1L |])) |> ignore) "2 labels"
            Expect.stringContains ex.Message "embeddings [5, 2] and labels [2]" "gives both shapes"
        }
    ]

let supconTests =
    testList "supervised contrastive loss" [
        test "the authors' defaults" {
            let l = SupervisedContrastiveLoss()
            Expect.equal (l.Temperature, l.BaseTemperature) (0.07, 0.07) "temperature, base temperature"
        }

        test "per-anchor values worked by hand (tau 0.5), a class alone counts 0" {
            // z0 = (1, 0), z1 = (0.6, 0.8) of class 0; z2 = (0, 1) of class 1. Similarities / 0.5: s01 = 1.2, s02 = 0, s12 = 1.6.
            // Anchor 0: -(1.2 - log(e^1.2 + e^0)) = 0.2632824673. Anchor 1: -(1.2 - log(e^1.2 + e^1.6)) = 0.9130152524.
            // Anchor 2: no positive -> 0 (it is still a negative in the others' denominators). Mean = 0.3920992399.
            let z = torch.tensor([| 1f; 0f; 0.6f; 0.8f; 0f; 1f |]).reshape(3L, 2L)
            let y = torch.tensor([| 0L; 0L; 1L |])
            let loss = SupervisedContrastiveLoss(Temperature = 0.5, BaseTemperature = 0.5)
            expectAll (loss.PerAnchor(z, y) |> values) [| 0.2632824673; 0.9130152524; 0.0 |]
            Expect.floatClose tol (float (loss.Forward(z, y).item<float32>())) 0.3920992399 "mean over the 3 anchors"
            // tau / base tau scales the loss: base 1 halves it.
            let half = SupervisedContrastiveLoss(Temperature = 0.5, BaseTemperature = 1.0).PerAnchor(z, y) |> values
            Expect.floatClose tol (float half[1]) (0.9130152524 / 2.0) "scaled by tau / base tau"
        }

        test "several positives: the mean of their log-probabilities" {
            // Classes 0 0 0: anchor 0's positives 1 and 2; denominators over a != 0 only.
            let z = torch.nn.functional.normalize(torch.tensor([| 1f; 0f; 0.6f; 0.8f; 0f; 1f; -1f; 0f |]).reshape(4L, 2L), p = 2.0, dim = 1L)
            let y = torch.tensor([| 0L; 0L; 0L; 1L |])
            let per = SupervisedContrastiveLoss(Temperature = 1.0, BaseTemperature = 1.0).PerAnchor(z, y) |> values
            // Anchor 0: sims 0.6, 0, -1; log denominator = log(e^0.6 + e^0 + e^-1); loss = -((0.6 - L) + (0 - L)) / 2.
            let l = Math.Log(Math.Exp 0.6 + 1.0 + Math.Exp -1.0)
            Expect.floatClose tol (float per[0]) (-((0.6 - l) + (0.0 - l)) / 2.0) "anchor 0"
        }

        test "two views with the example index as label is NT-Xent (cross-entropy over the other 2n-1 rows)" {
            torch.manual_seed 7L |> ignore
            let a = torch.nn.functional.normalize(torch.randn([| 5L; 4L |]), p = 2.0, dim = 1L)
            let b = torch.nn.functional.normalize(torch.randn([| 5L; 4L |]), p = 2.0, dim = 1L)
            let tau = 0.2
            let loss = SupervisedContrastiveLoss(Temperature = tau, BaseTemperature = tau)
            let ours = loss.ForwardViews(a, b).item<float32>()
            // Independent: logits = z z^T / tau with the diagonal at -inf, target = the other view's row.
            let z = torch.cat([| a; b |], 0L)
            let logits = (z.mm(z.t()) / tau).masked_fill(torch.eye(10L, dtype = torch.ScalarType.Bool), Double.NegativeInfinity)
            let target = torch.cat([| torch.arange(5L, 10L); torch.arange(0L, 5L) |], 0L)
            let ntxent = torch.nn.functional.cross_entropy(logits, target).item<float32>()
            Expect.floatClose tol (float ours) (float ntxent) "NT-Xent"
        }

        test "gradients flow and descent lowers the loss" {
            let loss = SupervisedContrastiveLoss(Temperature = 0.1)
            let first, last = descend (fun e y -> loss.Forward(e, y))
            Expect.isLessThan last (first * 0.8f) $"loss fell from {first} to {last}"
        }

        test "bad shapes and temperatures are refused" {
            let e, _ = fivePoints ()
            let ex = throwsWith<ArgumentException> (fun () -> SupervisedContrastiveLoss().Forward(e, torch.tensor([| 0L |])) |> ignore) "1 label"
            Expect.stringContains ex.Message "embeddings [5, 2] and labels [1]" "gives both shapes"
            let ex = throwsWith<ArgumentException> (fun () -> SupervisedContrastiveLoss(Temperature = 0.0).Forward(e, torch.tensor([| 0L; 0L; 1L; 1L; 2L |])) |> ignore) "tau 0"
            Expect.stringContains ex.Message "Temperature = 0" "names the value"
            let ex = throwsWith<ArgumentException> (fun () -> SupervisedContrastiveLoss().ForwardViews(e, e.narrow(0L, 0L, 3L)) |> ignore) "views"
            Expect.stringContains ex.Message "[5, 2] and [3, 2]" "gives both shapes"
        }
    ]

let retrievalTests =
    testList "retrieval over tensors" [
        test "the same report as the managed arrays" {
            let e, y = fivePoints ()
            let t = TensorRetrieval.Evaluate(e, y)
            let a = Retrieval.Evaluate(ReadOnlySpan(values e), ReadOnlySpan [| 0; 0; 1; 1; 2 |], 2)
            Expect.equal (t.Overall.RecallAtK |> List.ofSeq, t.Overall.MapAtR) (a.Overall.RecallAtK |> List.ofSeq, a.Overall.MapAtR) "same"
            // By hand: nearest of e0 is e2 (d 0.2, class 1): miss; e1 -> e2 (0.04): miss; e2 -> e1: miss; e3 -> e1 (0.2): miss;
            // e4 -> e3 (1): miss. recall@1 = 0.
            Expect.equal (t.Overall.RecallAt 1) 0.0 "every nearest neighbour is of another class"
            let split = TensorRetrieval.EvaluateQueries(e.narrow(0L, 0L, 2L), y.narrow(0L, 0L, 2L), e.narrow(0L, 2L, 3L), torch.tensor([| 0L; 1L; 2L |]))
            // Query e0 -> refs e2 (0.2, now class 0): hit; e1 -> e2 (0.04): hit.
            Expect.equal (split.Overall.RecallAt 1) 1.0 "queries against references"
        }

        test "shapes and labels out of range are refused" {
            let e, _ = fivePoints ()
            let ex = throwsWith<ArgumentException> (fun () -> TensorRetrieval.Evaluate(e, torch.tensor([| 0L |])) |> ignore) "shape"
            Expect.stringContains ex.Message "[5, 2] and [1]" "gives both shapes"
            let ex = throwsWith<ArgumentException> (fun () -> TensorRetrieval.Evaluate(e, torch.tensor([| 0L; 0L; 1L; 1L; 5000000000L |])) |> ignore) "range"
            Expect.stringContains ex.Message "row 4" "names the row"
        }
    ]

[<Tests>]
let tests = testList "Torch" [ tripletTests; supconTests; retrievalTests ]
