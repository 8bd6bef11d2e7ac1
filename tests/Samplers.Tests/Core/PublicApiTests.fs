/// The F# assemblies' public surface, pinned. PublicApiAnalyzers do not run on F#, so this test dumps each assembly's
/// public and protected members by reflection (sorted, one line per member, with full signatures) and compares the
/// dump with a committed file under tests/Samplers.Tests/Approval/. Any change to the surface is then a visible diff
/// in review. To accept a deliberate change: SAMPLERS_ACCEPT_API=1 dotnet run --project tests/Samplers.Tests -c Release
/// -- --filter Core.PublicApi (CI unsets the variable, so it can only pass by matching the committed file).
module Samplers.Tests.Core.PublicApiTests

open System
open System.IO
open System.Reflection
open System.Runtime.CompilerServices
open System.Text
open System.Xml.Linq
open Expecto
open Microsoft.FSharp.Core
open Samplers.Tests.TestUtil

let acceptVariable = "SAMPLERS_ACCEPT_API"

let rec typeName (t: Type) : string =
    if t.IsByRef then typeName (t.GetElementType())
    elif t.IsArray then
        let rank = t.GetArrayRank()
        typeName (t.GetElementType()) + "[" + String(',', rank - 1) + "]"
    elif t.IsPointer then typeName (t.GetElementType()) + "*"
    elif t.IsGenericParameter then t.Name
    else
        let baseName =
            let n = if t.IsNested then typeName t.DeclaringType + "+" + t.Name else (if isNull t.Namespace then t.Name else t.Namespace + "." + t.Name)
            let tick = n.IndexOf '`'
            if tick >= 0 then n.Substring(0, tick) else n
        if t.IsGenericType then
            let args = t.GetGenericArguments() |> Array.map typeName
            baseName + "<" + String.Join(", ", args) + ">"
        else baseName

let private visible (m: MethodBase) = not (isNull m) && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly)

let private access (m: MethodBase) = if m.IsPublic then "" else "protected "

let private parameter (p: ParameterInfo) =
    let t = p.ParameterType
    let modifier =
        if t.IsByRef then (if p.IsOut then "out " elif p.IsIn then "in " else "ref ")
        elif p.IsDefined(typeof<ParamArrayAttribute>, false) then "params "
        else ""
    let dflt = if p.HasDefaultValue then " = " + (if isNull p.DefaultValue then "null" else string p.DefaultValue) else ""
    $"{modifier}{typeName t} {p.Name}{dflt}"

let private parameters (ps: ParameterInfo[]) = String.Join(", ", ps |> Array.map parameter)

let private methodModifiers (m: MethodBase) =
    [ if m.IsStatic then "static"
      if m.IsAbstract then "abstract"
      elif m.IsVirtual && not m.IsFinal then
          match m with
          | :? MethodInfo as mi when mi.GetBaseDefinition().DeclaringType <> mi.DeclaringType -> "override"
          | _ -> "virtual"
      elif m.IsVirtual then
          match m with
          | :? MethodInfo as mi when mi.GetBaseDefinition().DeclaringType <> mi.DeclaringType -> "override sealed"
          | _ -> () ]
    |> function [] -> "" | xs -> " [" + String.Join(" ", xs) + "]"

let private typeHeader (t: Type) =
    let kind =
        if t.IsEnum then "enum"
        elif t.IsInterface then "interface"
        elif t.IsValueType then (if t.IsDefined(typeof<IsReadOnlyAttribute>, false) then "readonly struct" else "struct")
        elif typeof<Delegate>.IsAssignableFrom t then "delegate"
        elif t.IsAbstract && t.IsSealed then "static class"
        elif t.IsAbstract then "abstract class"
        elif t.IsSealed then "sealed class"
        else "class"
    let baseType =
        if t.IsEnum then [ typeName (Enum.GetUnderlyingType t) ]
        elif isNull t.BaseType || t.BaseType = typeof<obj> || t.BaseType = typeof<ValueType> then []
        else [ typeName t.BaseType ]
    let interfaces = if t.IsEnum then [] else t.GetInterfaces() |> Array.map typeName |> Array.sort |> List.ofArray
    let bases = baseType @ interfaces
    // "T (kind)" sorts before "T: member" (' ' < ':'), so each type's header comes first.
    typeName t + " (" + kind + ")" + (if bases.IsEmpty then "" else " : " + String.Join(", ", bases))

/// One line per public type and member of the assembly, sorted ordinally.
let surface (asm: Assembly) : string[] =
    let flags = BindingFlags.Public ||| BindingFlags.NonPublic ||| BindingFlags.Instance ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly
    [| for t in asm.GetExportedTypes() do
        let tn = typeName t
        yield typeHeader t
        if t.IsEnum then
            for f in t.GetFields(BindingFlags.Public ||| BindingFlags.Static) do
                yield $"{tn}.{f.Name} = {Convert.ToInt64(f.GetRawConstantValue())}"
        else
            for c in t.GetConstructors flags do
                if visible c then yield $"{tn}: {access c}.ctor({parameters (c.GetParameters())})"
            for m in t.GetMethods flags do
                // Property and event accessors are listed with their property or event.
                let accessor = m.IsSpecialName && (m.Name.StartsWith "get_" || m.Name.StartsWith "set_" || m.Name.StartsWith "add_" || m.Name.StartsWith "remove_")
                if visible m && not accessor then
                    let generic = if m.IsGenericMethodDefinition then "<" + String.Join(", ", m.GetGenericArguments() |> Array.map typeName) + ">" else ""
                    yield $"{tn}: {access m}{m.Name}{generic}({parameters (m.GetParameters())}) : {typeName m.ReturnType}{methodModifiers m}"
            for p in t.GetProperties flags do
                let g = p.GetMethod
                let s = p.SetMethod
                if visible g || visible s then
                    let accessors =
                        [ if visible g then access g + "get;"
                          if visible s then (if s.ReturnParameter.GetRequiredCustomModifiers() |> Array.contains typeof<IsExternalInit> then access s + "init;" else access s + "set;") ]
                    let index = match p.GetIndexParameters() with [||] -> "" | ps -> "[" + parameters ps + "]"
                    let any = if visible g then g else s
                    let acc = String.Join(" ", accessors)
                    yield $"{tn}: {p.Name}{index} {{ {acc} }} : {typeName p.PropertyType}{methodModifiers any}"
            for f in t.GetFields flags do
                if f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly then
                    let mods = [ if f.IsStatic then "static"; if f.IsInitOnly then "readonly"; if f.IsLiteral then "const" ]
                    yield $"{tn}: field {f.Name} : {typeName f.FieldType}" + (if mods.IsEmpty then "" else " [" + String.Join(" ", mods) + "]")
            for e in t.GetEvents flags do
                if visible e.AddMethod then yield $"{tn}: event {e.Name} : {typeName e.EventHandlerType}" |]
    |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

/// Public members that need a `///` doc but have none in the assembly's XML documentation file. Members the F#
/// compiler generates (record/union equality and comparison) carry no docs and are skipped.
let undocumented (asm: Assembly) : string[] =
    let xmlPath = Path.ChangeExtension(asm.Location, ".xml")
    let names =
        XDocument.Load(xmlPath).Descendants(XName.Get "member")
        |> Seq.map (fun m -> m.Attribute(XName.Get "name").Value)
        |> Seq.toArray
    let docId (t: Type) = ((typeName t).Split('<')[0]).Replace('+', '.')
    let has (prefix: string) = names |> Array.exists (fun n -> n = prefix || n.StartsWith(prefix + "(") || n.StartsWith(prefix + "`"))
    let flags = BindingFlags.Public ||| BindingFlags.Instance ||| BindingFlags.Static ||| BindingFlags.DeclaredOnly
    let generated (m: MemberInfo) = m.IsDefined(typeof<CompilerGeneratedAttribute>, false)
    // An F# record's constructor is implied by its documented fields and cannot carry a doc of its own.
    let isRecord (t: Type) =
        t.GetCustomAttributes<CompilationMappingAttribute>() |> Seq.exists (fun a -> a.SourceConstructFlags = SourceConstructFlags.RecordType)
    // Doc ids of constructors by arity: "M:T.#ctor(A,B)" has 2 (generic arguments use {}, so commas inside them are skipped).
    let arity (docName: string) =
        let i = docName.IndexOf '('
        if i < 0 then 0
        else
            let mutable depth = 0
            let mutable commas = 0
            for c in docName.Substring(i + 1) do
                if c = '{' then depth <- depth + 1
                elif c = '}' then depth <- depth - 1
                elif c = ',' && depth = 0 then commas <- commas + 1
            commas + 1
    [| for t in asm.GetExportedTypes() do
        let id = docId t
        if not (has ("T:" + id)) then yield $"type {id}"
        if t.IsEnum then
            for f in t.GetFields(BindingFlags.Public ||| BindingFlags.Static) do
                if not (has $"F:{id}.{f.Name}") then yield $"enum value {id}.{f.Name}"
        else
            for c in t.GetConstructors flags do
                let n = c.GetParameters().Length
                let documented = names |> Array.exists (fun d -> d.StartsWith $"M:{id}.#ctor" && arity d = n)
                if not (generated c) && not (isRecord t) && not documented then yield $"constructor of {id} with {n} parameter(s)"
            for m in t.GetMethods flags do
                let accessor = m.IsSpecialName && (m.Name.StartsWith "get_" || m.Name.StartsWith "set_")
                let inherited = m.IsVirtual && m.GetBaseDefinition().DeclaringType <> m.DeclaringType && m.GetBaseDefinition().DeclaringType.Assembly <> asm
                if not accessor && not (generated m) && not inherited && not (has $"M:{id}.{m.Name}") then yield $"method {id}.{m.Name}"
            for p in t.GetProperties flags do
                if not (generated p) && not (has $"P:{id}.{p.Name}") then yield $"property {id}.{p.Name}" |]
    |> Array.distinct

let private approvalPath (assemblyName: string) =
    Path.Combine(repoRoot.Value, "tests", "Samplers.Tests", "Approval", $"{assemblyName}.publicapi.txt")

let private header (assemblyName: string) =
    [| $"# Public surface of {assemblyName}, one line per type and member (tests/Samplers.Tests/Core/PublicApiTests.fs)."
       $"# A change here is an API change: review it. Accept with {acceptVariable}=1 (never set in CI)." |]

/// A compact diff: lines only in the committed file (-) and only in the current build (+).
let diff (committed: string[]) (current: string[]) =
    let c = Collections.Generic.HashSet<string>(committed)
    let n = Collections.Generic.HashSet<string>(current)
    let removed = committed |> Array.filter (n.Contains >> not) |> Array.map (fun l -> "- " + l)
    let added = current |> Array.filter (c.Contains >> not) |> Array.map (fun l -> "+ " + l)
    Array.append removed added

let approve (asm: Assembly) =
    let name = asm.GetName().Name
    let path = approvalPath name
    let current = Array.append (header name) (surface asm)
    if Environment.GetEnvironmentVariable acceptVariable = "1" then
        Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
        let tmp = path + ".tmp"
        File.WriteAllText(tmp, String.Join("\n", current) + "\n", UTF8Encoding(false))
        File.Move(tmp, path, true)
        printfn "public surface of %s written to %s: review the diff before committing" name path
    if not (File.Exists path) then
        failtestf "%s is missing. Create it with: %s=1 dotnet run --project tests/Samplers.Tests -c Release -- --filter Core.PublicApi" path acceptVariable
    let committed = File.ReadAllLines path |> Array.filter (fun l -> l.Length > 0)
    let d = diff committed current
    if d.Length > 0 then
        let shown = d |> Array.truncate 60
        failtestf "The public surface of %s differs from %s (%d line(s); - committed, + now):\n%s%s\nIf the change is deliberate, accept it with: %s=1 dotnet run --project tests/Samplers.Tests -c Release -- --filter Core.PublicApi, and review the diff of the file."
            name path d.Length (String.Join("\n", shown)) (if d.Length > shown.Length then "\n..." else "") acceptVariable

let coreAssembly = typeof<Samplers.Core.Planner>.Assembly
let mathNetAssembly = typeof<Samplers.Core.Statistics.PhiloxRandomSource>.Assembly

[<Tests>]
let tests =
    testList "Core.PublicApi" [
        testCase "Samplers.Core's public surface matches the committed approval file" <| fun () -> approve coreAssembly
        testCase "Samplers.Core.MathNet's public surface matches the committed approval file" <| fun () -> approve mathNetAssembly

        testCase "every public type and member of the F# assemblies has a /// doc" <| fun () ->
            for asm in [ coreAssembly; mathNetAssembly ] do
                let missing = undocumented asm
                let listed = String.Join(", ", missing)
                Expect.isEmpty missing $"undocumented public members of {asm.GetName().Name}: {listed}"

        testCase "the dump shows what a reviewer needs: out parameters, statics, overrides, enum values, records" <| fun () ->
            let lines = surface coreAssembly
            let has (line: string) = Expect.contains lines line $"surface line: {line}"
            has "Samplers.Core.Tfds.DatasetVersion: TryParse(System.String text, out Samplers.Core.Tfds.DatasetVersion result) : System.Boolean [static]"
            has "Samplers.SamplingMode.Coverage = 1"
            has "Samplers.Core.Planner: PlanVersion { get; } : System.Int32 [static]"
            has "Samplers.Core.Planner: Fill(Samplers.Core.PlanKey key, System.Span<System.Int32> indices, System.Span<System.Int32> classOrdinals) : System.Void"
            Expect.isTrue (lines |> Array.exists (fun l -> l.StartsWith "Samplers.Core.PlanConfig: ToString() : System.String [override")) "override marked"

        testCase "a changed surface fails with a diff naming the lines and how to accept" <| fun () ->
            let committed = [| "A: x"; "B: y" |]
            let d = diff committed [| "A: x"; "B: z" |]
            Expect.equal d [| "- B: y"; "+ B: z" |] "removed then added"

        testCase "no public type of the core is an F# function, list, option or unnamed tuple in a signature" <| fun () ->
            // docs/CORE.md "C#-friendly shapes": no F#-only shapes in the public surface.
            let bad = [| "Microsoft.FSharp.Core.FSharpFunc"; "Microsoft.FSharp.Collections.FSharpList"; "Microsoft.FSharp.Core.FSharpOption"
                         "Microsoft.FSharp.Core.FSharpValueOption"; "System.Tuple<"; "System.ValueTuple<"; "Microsoft.FSharp.Collections.FSharpMap"
                         "Microsoft.FSharp.Core.FSharpResult" |]
            for asm in [ coreAssembly; mathNetAssembly ] do
                let offending = surface asm |> Array.filter (fun l -> bad |> Array.exists (fun b -> l.Contains b))
                Expect.isEmpty offending $"F#-only shapes in the public surface of {asm.GetName().Name}"
    ]
