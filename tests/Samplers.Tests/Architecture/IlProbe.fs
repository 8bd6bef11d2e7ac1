// A known case for the IL walker's own test (ArchitectureTests.fs): ProbeCaller refers to ProbeTarget only inside
// method bodies (a direct call, a call in a closure, a constructor call, a static field read), never in a
// signature, base type or attribute. If the walker saw no body, the edge ProbeCaller → ProbeTarget would vanish.
namespace Samplers.Tests.Architecture.ProbeTarget

open System.Runtime.CompilerServices

module Target =
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    let twice (x: int) = x * 2

type Counter() =
    static let mutable total = 0
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    member _.Add(x: int) = total <- total + x; total

namespace Samplers.Tests.Architecture.ProbeCaller

open System.Runtime.CompilerServices

type Caller() =
    [<MethodImpl(MethodImplOptions.NoInlining)>]
    member _.Direct(x: int) : int = Samplers.Tests.Architecture.ProbeTarget.Target.twice x

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    member _.InClosure(xs: int list) : int list =
        xs |> List.map (fun x -> Samplers.Tests.Architecture.ProbeTarget.Target.twice x + 1)

    [<MethodImpl(MethodImplOptions.NoInlining)>]
    member _.Constructs(x: int) : int = Samplers.Tests.Architecture.ProbeTarget.Counter().Add x
