/// The namespace dependency graph of built assemblies, read from their metadata with
/// System.Reflection.Metadata: no assembly is loaded, so nothing runs and any target framework can be read.
///
/// A type refers to another through its base type, interfaces, generic constraints, explicit interface
/// implementations, field / property / event / method signatures, custom attributes (the attribute type and typeof
/// arguments), and method bodies: the IL of every method is walked opcode by opcode, and the metadata token of each
/// operand (TypeDef, TypeRef, TypeSpec, MethodDef, MemberRef, MethodSpec, FieldDef, StandAloneSig) resolves to the
/// declaring type of the member, plus the types of generic arguments; locals and catch clauses count too.
///
/// A type belongs to the namespace of its outermost declaring type, so nested types, closures, lambdas' <>c classes
/// and state machines count for the type whose code they hold. Compiler-generated top-level types outside any
/// counted namespace (F#'s <StartupCode$...> classes, <PrivateImplementationDetails>) belong to no namespace: their
/// references are attributed to every counted type that refers to them (transitively).
module Samplers.Tests.Architecture.Dependencies

open System
open System.Collections.Generic
open System.Collections.Immutable
open System.IO
open System.Reflection
open System.Reflection.Emit
open System.Reflection.Metadata
open System.Reflection.Metadata.Ecma335
open System.Reflection.PortableExecutable
open System.Text
open System.Text.RegularExpressions

/// A type as one assembly names it: the assembly defining it, the namespace it counts for (its outermost declaring
/// type's), and its full name (nested types after '+').
type TypeId = { Assembly: string; Namespace: string; FullName: string }

/// One reference from a type to another: `From.FullName.Member Verb To.FullName.ToMember`.
type Reference =
    { From: TypeId
      /// The member of From holding the reference ("" for the type itself: base type, interfaces, attributes).
      Member: string
      Verb: string
      To: TypeId
      /// The member of To that is used, when a member is ("" otherwise).
      ToMember: string
      /// When the reference sits in a compiler-generated type of no namespace reached from From: that type's member.
      Via: string }

    /// "Samplers.Tfds.TfdsCacheEntry.Open calls Samplers.Cache.ParquetCache.Read".
    member r.Describe() =
        let from = if r.Member = "" then r.From.FullName else r.From.FullName + "." + r.Member
        let target = if r.ToMember = "" then r.To.FullName else r.To.FullName + "." + r.ToMember
        let via = if r.Via = "" then "" else $" (in {r.Via})"
        $"{from} {r.Verb} {target}{via}"

/// The types' references of one assembly, and what the assembly references.
type AssemblyReferences =
    { Name: string
      Path: string
      /// Names of the referenced assemblies (AssemblyRef table).
      AssemblyRefs: string list
      /// Every type defined in the assembly (full name), with the namespace it counts for.
      Types: TypeId list
      /// Every reference, in metadata order (types, then members, then IL order); duplicates kept.
      References: Reference list }

// ---------------------------------------------------------------------------------------------------------------
// The IL opcode table, built from System.Reflection.Emit.OpCodes so every opcode's operand size is known.

let private oneByte, private twoByte =
    let one = Array.zeroCreate<OpCode option> 256
    let two = Array.zeroCreate<OpCode option> 256
    for f in typeof<OpCodes>.GetFields(BindingFlags.Public ||| BindingFlags.Static) do
        match f.GetValue null with
        | :? OpCode as op ->
            let v = int (uint16 op.Value)
            if op.Size = 1 then one.[v &&& 0xFF] <- Some op
            elif op.Size = 2 && (v >>> 8) = 0xFE then two.[v &&& 0xFF] <- Some op
        | _ -> ()
    one, two

// ---------------------------------------------------------------------------------------------------------------
// Reading one assembly.

type private Reader(path: string, peReader: PEReader, md: MetadataReader) =
    let asmName = md.GetString(md.GetAssemblyDefinition().Name)
    let typeDefIds = Dictionary<TypeDefinitionHandle, TypeId>()
    let typeRefIds = Dictionary<TypeReferenceHandle, TypeId>()
    let references = ResizeArray<Reference>()

    let rec typeDefId (h: TypeDefinitionHandle) : TypeId =
        match typeDefIds.TryGetValue h with
        | true, id -> id
        | _ ->
            let td = md.GetTypeDefinition h
            let name = md.GetString td.Name
            let outer = td.GetDeclaringType()
            let id =
                if outer.IsNil then
                    let ns = md.GetString td.Namespace
                    { Assembly = asmName; Namespace = ns; FullName = (if ns = "" then name else ns + "." + name) }
                else
                    let o = typeDefId outer
                    { o with FullName = o.FullName + "+" + name }
            typeDefIds.[h] <- id
            id

    let rec typeRefId (h: TypeReferenceHandle) : TypeId =
        match typeRefIds.TryGetValue h with
        | true, id -> id
        | _ ->
            let tr = md.GetTypeReference h
            let name = md.GetString tr.Name
            let scope = tr.ResolutionScope
            let id =
                if scope.Kind = HandleKind.TypeReference then
                    let o = typeRefId (MetadataTokens.TypeReferenceHandle(MetadataTokens.GetRowNumber scope))
                    { o with FullName = o.FullName + "+" + name }
                else
                    let asm =
                        if scope.Kind = HandleKind.AssemblyReference then
                            md.GetString(md.GetAssemblyReference(MetadataTokens.AssemblyReferenceHandle(MetadataTokens.GetRowNumber scope)).Name)
                        else asmName // this module, another module of it, or an exported type
                    let ns = md.GetString tr.Namespace
                    { Assembly = asm; Namespace = ns; FullName = (if ns = "" then name else ns + "." + name) }
            typeRefIds.[h] <- id
            id

    /// The types a signature mentions, generic type and arguments alike (a type parameter mentions none).
    let rec provider =
        { new ISignatureTypeProvider<TypeId list, obj> with
            member _.GetPrimitiveType _ = []
            member _.GetTypeFromDefinition(_, h, _) = [ typeDefId h ]
            member _.GetTypeFromReference(_, h, _) = [ typeRefId h ]
            member _.GetTypeFromSpecification(_, ctx, h, _) = md.GetTypeSpecification(h).DecodeSignature(provider, ctx)
            member _.GetSZArrayType e = e
            member _.GetArrayType(e, _) = e
            member _.GetByReferenceType e = e
            member _.GetPointerType e = e
            member _.GetPinnedType e = e
            member _.GetGenericInstantiation(g, args) = g @ List.concat args
            member _.GetGenericMethodParameter(_, _) = []
            member _.GetGenericTypeParameter(_, _) = []
            member _.GetModifiedType(m, t, _) = m @ t
            member _.GetFunctionPointerType s = s.ReturnType @ List.concat s.ParameterTypes }

    let signatureTypes (s: MethodSignature<TypeId list>) = s.ReturnType @ List.concat s.ParameterTypes

    /// The types an entity handle names: a type, or the declaring type of a member (with generic arguments).
    let rec entityTypes (h: EntityHandle) : TypeId list =
        match h.Kind with
        | HandleKind.TypeDefinition -> [ typeDefId (MetadataTokens.TypeDefinitionHandle(MetadataTokens.GetRowNumber h)) ]
        | HandleKind.TypeReference -> [ typeRefId (MetadataTokens.TypeReferenceHandle(MetadataTokens.GetRowNumber h)) ]
        | HandleKind.TypeSpecification ->
            md.GetTypeSpecification(MetadataTokens.TypeSpecificationHandle(MetadataTokens.GetRowNumber h)).DecodeSignature(provider, null)
        | HandleKind.MethodDefinition ->
            [ typeDefId (md.GetMethodDefinition(MetadataTokens.MethodDefinitionHandle(MetadataTokens.GetRowNumber h)).GetDeclaringType()) ]
        | HandleKind.FieldDefinition ->
            [ typeDefId (md.GetFieldDefinition(MetadataTokens.FieldDefinitionHandle(MetadataTokens.GetRowNumber h)).GetDeclaringType()) ]
        | HandleKind.MemberReference ->
            let parent = md.GetMemberReference(MetadataTokens.MemberReferenceHandle(MetadataTokens.GetRowNumber h)).Parent
            if parent.Kind = HandleKind.ModuleReference then [] else entityTypes parent
        | HandleKind.MethodSpecification ->
            let ms = md.GetMethodSpecification(MetadataTokens.MethodSpecificationHandle(MetadataTokens.GetRowNumber h))
            entityTypes ms.Method @ List.concat (ms.DecodeSignature(provider, null))
        | k -> failwith $"{path}: unexpected metadata handle kind {k}"

    /// The name of the member an entity handle names ("" for a type).
    let rec memberName (h: EntityHandle) : string =
        match h.Kind with
        | HandleKind.MethodDefinition -> md.GetString(md.GetMethodDefinition(MetadataTokens.MethodDefinitionHandle(MetadataTokens.GetRowNumber h)).Name)
        | HandleKind.FieldDefinition -> md.GetString(md.GetFieldDefinition(MetadataTokens.FieldDefinitionHandle(MetadataTokens.GetRowNumber h)).Name)
        | HandleKind.MemberReference -> md.GetString(md.GetMemberReference(MetadataTokens.MemberReferenceHandle(MetadataTokens.GetRowNumber h)).Name)
        | HandleKind.MethodSpecification ->
            memberName (md.GetMethodSpecification(MetadataTokens.MethodSpecificationHandle(MetadataTokens.GetRowNumber h)).Method)
        | _ -> ""

    let add from memberOf verb (targets: TypeId list) toMember =
        targets
        |> List.iteri (fun i t ->
            // The first type is the member's declaring type; the rest are generic arguments.
            let verb, toMember = if i = 0 || toMember = "" then verb, toMember else "uses type argument", ""
            references.Add { From = from; Member = memberOf; Verb = verb; To = t; ToMember = toMember; Via = "" })

    /// Names in a serialized type name ("Ns.Outer+Inner`1[[Ns.Arg, Asm, Version=...]], Asm"), for typeof arguments.
    let serializedTypeIds (s: string) : TypeId list =
        [ for m in Regex.Matches(s, @"(?:^|\[)\s*([^\[\],\s][^\[\],]*?)\s*(?:,\s*([^\[\],\s]+)[^\[\]]*?)?(?=\]|\[|$)") do
            let full = m.Groups.[1].Value
            let outer = full.Split('+').[0]
            let dot = outer.LastIndexOf '.'
            let ns = if dot < 0 then "" else outer.Substring(0, dot)
            let asm = if m.Groups.[2].Success then m.Groups.[2].Value else asmName
            yield { Assembly = asm; Namespace = ns; FullName = full } ]

    let attributeProvider =
        { new ICustomAttributeTypeProvider<string> with
            member _.GetPrimitiveType _ = ""
            member _.GetSystemType() = "System.Type"
            member _.GetSZArrayType e = e
            member _.GetTypeFromDefinition(_, h, _) = (typeDefId h).FullName
            member _.GetTypeFromReference(_, h, _) = (typeRefId h).FullName
            member _.GetTypeFromSerializedName n = n
            member _.GetUnderlyingEnumType _ = PrimitiveTypeCode.Int32 // a guess: decoding is then wrapped below
            member _.IsSystemType t = t = "System.Type" }

    let attributes from memberOf (handles: CustomAttributeHandleCollection) =
        for h in handles do
            let ca = md.GetCustomAttribute h
            add from memberOf "has attribute" (entityTypes ca.Constructor) ""
            // typeof(...) arguments are stored as serialized names. An enum argument of a non-int underlying type
            // would misread the blob: such attributes only lose their typeof arguments.
            try
                let v = ca.DecodeValue attributeProvider
                let typeArgs =
                    Seq.append (v.FixedArguments |> Seq.map (fun a -> a.Type, a.Value)) (v.NamedArguments |> Seq.map (fun a -> a.Type, a.Value))
                for t, value in typeArgs do
                    match value with
                    | :? string as s when t = "System.Type" -> add from memberOf "has attribute with typeof" (serializedTypeIds s) ""
                    | :? ImmutableArray<CustomAttributeTypedArgument<string>> as xs ->
                        for x in xs do
                            match x.Value with
                            | :? string as s when x.Type = "System.Type" -> add from memberOf "has attribute with typeof" (serializedTypeIds s) ""
                            | _ -> ()
                    | _ -> ()
            with _ -> ()

    let genericParameters from memberOf (ps: GenericParameterHandleCollection) =
        for p in ps do
            let gp = md.GetGenericParameter p
            attributes from memberOf (gp.GetCustomAttributes())
            for c in gp.GetConstraints() do
                let gc = md.GetGenericParameterConstraint c
                add from memberOf "constrains a type parameter to" (entityTypes gc.Type) ""
                attributes from memberOf (gc.GetCustomAttributes())

    /// Walks the IL of one method body, adding a reference for every token operand.
    let methodBody from memberOf (body: MethodBodyBlock) =
        if not body.LocalSignature.IsNil then
            let locals = md.GetStandaloneSignature(body.LocalSignature).DecodeLocalSignature(provider, null)
            for l in locals do add from memberOf "has a local of type" l ""
        for region in body.ExceptionRegions do
            if region.Kind = ExceptionRegionKind.Catch then add from memberOf "catches" (entityTypes region.CatchType) ""
        let mutable il = body.GetILReader()
        while il.RemainingBytes > 0 do
            let at = il.Offset
            let b = int (il.ReadByte())
            let op =
                if b = 0xFE then
                    if il.RemainingBytes = 0 then None else twoByte.[int (il.ReadByte())]
                else oneByte.[b]
            match op with
            | None -> failwith $"{path}: {from.FullName}.{memberOf}: unknown IL opcode 0x{b:X2} at IL_{at:X4}"
            | Some op ->
                match op.OperandType with
                | OperandType.InlineNone -> ()
                | OperandType.ShortInlineBrTarget | OperandType.ShortInlineI | OperandType.ShortInlineVar -> il.Offset <- il.Offset + 1
                | OperandType.InlineVar -> il.Offset <- il.Offset + 2
                | OperandType.InlineBrTarget | OperandType.InlineI | OperandType.ShortInlineR | OperandType.InlineString ->
                    il.Offset <- il.Offset + 4
                | OperandType.InlineI8 | OperandType.InlineR -> il.Offset <- il.Offset + 8
                | OperandType.InlineSwitch ->
                    let n = il.ReadInt32()
                    il.Offset <- il.Offset + 4 * n
                | OperandType.InlineSig ->
                    let token = il.ReadInt32()
                    let sg = md.GetStandaloneSignature(MetadataTokens.StandaloneSignatureHandle(token &&& 0xFFFFFF))
                    add from memberOf "calls indirectly through a signature using" (signatureTypes (sg.DecodeMethodSignature(provider, null))) ""
                | OperandType.InlineField | OperandType.InlineMethod | OperandType.InlineTok | OperandType.InlineType ->
                    let h = MetadataTokens.EntityHandle(il.ReadInt32())
                    let verb =
                        match op.OperandType, h.Kind with
                        | OperandType.InlineMethod, _ when op = OpCodes.Newobj -> "constructs"
                        | OperandType.InlineMethod, _ when op = OpCodes.Ldftn || op = OpCodes.Ldvirtftn -> "takes a delegate to"
                        | OperandType.InlineMethod, _ -> "calls"
                        | OperandType.InlineField, _ -> "uses field"
                        | _, (HandleKind.TypeDefinition | HandleKind.TypeReference | HandleKind.TypeSpecification) -> "uses type"
                        | _ -> "uses member"
                    add from memberOf verb (entityTypes h) (memberName h)
                | other -> failwith $"{path}: operand type {other} of {op.Name} not handled"

    member _.Name = asmName

    member _.Read() : AssemblyReferences =
        let types = ResizeArray<TypeId>()
        for th in md.TypeDefinitions do
            let td = md.GetTypeDefinition th
            let self = typeDefId th
            types.Add self
            if not td.BaseType.IsNil then add self "" "derives from" (entityTypes td.BaseType) ""
            for i in td.GetInterfaceImplementations() do
                let ii = md.GetInterfaceImplementation i
                add self "" "implements" (entityTypes ii.Interface) ""
                attributes self "" (ii.GetCustomAttributes())
            attributes self "" (td.GetCustomAttributes())
            genericParameters self "" (td.GetGenericParameters())
            for mi in td.GetMethodImplementations() do
                let impl = md.GetMethodImplementation mi
                add self (memberName impl.MethodBody) "implements" (entityTypes impl.MethodDeclaration) (memberName impl.MethodDeclaration)
            for fh in td.GetFields() do
                let f = md.GetFieldDefinition fh
                let name = md.GetString f.Name
                add self name "has type" (f.DecodeSignature(provider, null)) ""
                attributes self name (f.GetCustomAttributes())
            for ph in td.GetProperties() do
                let p = md.GetPropertyDefinition ph
                let name = md.GetString p.Name
                add self name "has type" (signatureTypes (p.DecodeSignature(provider, null))) ""
                attributes self name (p.GetCustomAttributes())
            for eh in td.GetEvents() do
                let e = md.GetEventDefinition eh
                let name = md.GetString e.Name
                add self name "has type" (entityTypes e.Type) ""
                attributes self name (e.GetCustomAttributes())
            for mh in td.GetMethods() do
                let m = md.GetMethodDefinition mh
                let name = md.GetString m.Name
                add self name "has signature using" (signatureTypes (m.DecodeSignature(provider, null))) ""
                attributes self name (m.GetCustomAttributes())
                for p in m.GetParameters() do attributes self name (md.GetParameter(p).GetCustomAttributes())
                genericParameters self name (m.GetGenericParameters())
                if m.RelativeVirtualAddress <> 0 then methodBody self name (peReader.GetMethodBody m.RelativeVirtualAddress)
        { Name = asmName
          Path = path
          AssemblyRefs = [ for h in md.AssemblyReferences -> md.GetString(md.GetAssemblyReference(h).Name) ]
          Types = List.ofSeq types
          References = List.ofSeq references }

/// Reads the types' references and assembly references of the assembly at path.
let readAssembly (path: string) : AssemblyReferences =
    use stream = File.OpenRead path
    use pe = new PEReader(stream)
    if not pe.HasMetadata then failwith $"{path} is not a .NET assembly"
    Reader(path, pe, pe.GetMetadataReader()).Read()

// ---------------------------------------------------------------------------------------------------------------
// The namespace graph.

/// A namespace dependency: one example reference, and how many references make it.
type Edge = { From: string; To: string; Example: Reference; Count: int }

type Graph =
    { Assemblies: AssemblyReferences list
      /// Each counted namespace, with the assemblies defining types in it.
      Namespaces: Map<string, Set<string>>
      /// Namespace edges (A → B with A ≠ B), merged over assemblies, keyed by (A, B).
      Edges: Map<string * string, Edge>
      /// The same edges per defining assembly of A: (assembly, A, B) → (assemblies of B's referenced types, edge).
      EdgesByAssembly: Map<string * string * string, Set<string> * Edge> }

/// The namespaces Samplers counts: "Samplers" and below.
let isSamplersNamespace (ns: string) = ns = "Samplers" || ns.StartsWith "Samplers."

/// The references of an assembly's types in counted namespaces, each attributed to the type counting it. A
/// reference into a type of the same assembly in no counted namespace (compiler-generated: F# startup code and the
/// closures nested in it, private implementation details) is followed, transitively, and that type's references are
/// attributed to the referrer, naming the member they sit in (Via).
let attributed (counted: string -> bool) (a: AssemblyReferences) : Reference list =
    let fromType = a.References |> List.groupBy (fun r -> r.From.FullName) |> dict
    let unowned (t: TypeId) = t.Assembly = a.Name && not (counted t.Namespace) && fromType.ContainsKey t.FullName
    [ for t in a.Types do
        if counted t.Namespace then
            match fromType.TryGetValue t.FullName with
            | true, refs ->
                let seen = HashSet<string>()
                let rec walk (via: Reference option) (rs: Reference list) =
                    [ for r in rs do
                        match via with
                        | None -> yield r
                        | Some v ->
                            yield { r with From = v.From; Member = v.Member; Via = (if r.Member = "" then r.From.FullName else r.From.FullName + "." + r.Member) }
                        if unowned r.To && seen.Add r.To.FullName then
                            yield! walk (Some(defaultArg via r)) fromType.[r.To.FullName] ]
                yield! walk None refs
            | _ -> () ]

/// The namespace graph of the given assemblies, counting only namespaces `counted` accepts (see `attributed`).
let graph (counted: string -> bool) (assemblies: AssemblyReferences list) : Graph =
    let namespaces =
        assemblies
        |> List.collect (fun a -> a.Types |> List.filter (fun t -> counted t.Namespace) |> List.map (fun t -> t.Namespace, a.Name))
        |> List.groupBy fst
        |> List.map (fun (ns, xs) -> ns, xs |> List.map snd |> Set.ofList)
        |> Map.ofList
    // A node is a namespace, or, for a namespace that several assemblies declare types in, that namespace in one
    // assembly ("Samplers [Samplers.Core]"): assemblies cannot refer to each other in a circle, so a cycle through
    // two assemblies' parts of one namespace would be an artefact of the shared name, not a dependency cycle.
    let node (t: TypeId) =
        match Map.tryFind t.Namespace namespaces with
        | Some asms when asms.Count > 1 -> $"{t.Namespace} [{t.Assembly}]"
        | _ -> t.Namespace
    let edges = Dictionary<string * string, Edge>()
    let byAsm = Dictionary<string * string * string, Set<string> * Edge>()
    // The example is the first reference in metadata order, preferring one made directly by the type.
    let better (e: Edge) (r: Reference) = if e.Example.Via <> "" && r.Via = "" then r else e.Example
    let record (asm: string) (r: Reference) =
        let ns = r.From.Namespace
        if counted r.To.Namespace && r.To.Namespace <> ns then
            let a, b = node r.From, node r.To
            let key = a, b
            match edges.TryGetValue key with
            | true, e -> edges.[key] <- { e with Count = e.Count + 1; Example = better e r }
            | _ -> edges.[key] <- { From = a; To = b; Example = r; Count = 1 }
            let key3 = asm, ns, r.To.Namespace
            match byAsm.TryGetValue key3 with
            | true, (asms, e) -> byAsm.[key3] <- (Set.add r.To.Assembly asms, { e with Count = e.Count + 1; Example = better e r })
            | _ -> byAsm.[key3] <- (Set.singleton r.To.Assembly, { From = ns; To = r.To.Namespace; Example = r; Count = 1 })
    for a in assemblies do
        for r in attributed counted a do record a.Name r
    { Assemblies = assemblies
      Namespaces = namespaces
      Edges = edges |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq
      EdgesByAssembly = byAsm |> Seq.map (fun kv -> kv.Key, kv.Value) |> Map.ofSeq }

/// Strongly connected components (Tarjan), each sorted, in a stable order; singletons included.
let stronglyConnected (nodes: string list) (successors: string -> string list) : string list list =
    let index = Dictionary<string, int>()
    let low = Dictionary<string, int>()
    let onStack = HashSet<string>()
    let stack = Stack<string>()
    let result = ResizeArray<string list>()
    let mutable next = 0
    let rec connect (v: string) =
        index.[v] <- next
        low.[v] <- next
        next <- next + 1
        stack.Push v
        onStack.Add v |> ignore
        for w in successors v do
            if not (index.ContainsKey w) then
                connect w
                low.[v] <- min low.[v] low.[w]
            elif onStack.Contains w then
                low.[v] <- min low.[v] index.[w]
        if low.[v] = index.[v] then
            let comp = ResizeArray<string>()
            let mutable go = true
            while go do
                let w = stack.Pop()
                onStack.Remove w |> ignore
                comp.Add w
                go <- w <> v
            result.Add(comp |> Seq.sort |> List.ofSeq)
    for v in List.sort nodes do
        if not (index.ContainsKey v) then connect v
    result |> Seq.sortBy (fun c -> c.Head) |> List.ofSeq

/// Successor namespaces of ns in g, sorted.
let successors (g: Graph) (ns: string) =
    g.Edges |> Map.toList |> List.choose (fun ((a, b), _) -> if a = ns then Some b else None) |> List.sort

/// The components of more than one namespace: each is one or more namespace cycles.
let cycles (g: Graph) : string list list =
    let nodes = (g.Namespaces |> Map.toList |> List.map fst) @ (g.Edges |> Map.toList |> List.collect (fun ((a, b), _) -> [ a; b ])) |> List.distinct
    stronglyConnected nodes (successors g) |> List.filter (fun c -> c.Length > 1)

/// A shortest path from a to b inside the namespaces `within` (breadth-first; successors in sorted order).
let shortestPath (g: Graph) (within: Set<string>) (a: string) (b: string) : string list option =
    let parent = Dictionary<string, string>()
    let queue = Queue<string>([ a ])
    let seen = HashSet<string>([ a ])
    let mutable found = a = b
    while not found && queue.Count > 0 do
        let v = queue.Dequeue()
        for w in successors g v do
            if not found && within.Contains w && seen.Add w then
                parent.[w] <- v
                if w = b then found <- true else queue.Enqueue w
    if not found then None
    else
        let rec back v acc = if v = a then a :: acc else back parent.[v] (v :: acc)
        Some(back b [])

/// Describes a cycle given as its namespaces in order (the last returns to the first), one example per edge.
let describeCycle (g: Graph) (path: string list) =
    let edges = List.pairwise (path @ [ path.Head ])
    let head = String.Join(" → ", path @ [ path.Head ])
    let lines = [ for a, b in edges -> $"    {a} → {b}: {g.Edges.[(a, b)].Example.Describe()} ({g.Edges.[(a, b)].Count} reference(s))" ]
    String.Join("\n", head :: lines)

/// The elementary cycles that explain a component: for each edge inside it, the shortest cycle through that edge
/// (so a pair A ↔ B shows as A → B → A), each once, rotated to start at its smallest namespace.
let cyclesOfComponent (g: Graph) (comp: string list) : string list list =
    let within = Set.ofList comp
    [ for (a, b), _ in Map.toList g.Edges do
        if within.Contains a && within.Contains b then
            match shortestPath g within b a with
            | Some back -> yield a :: List.take (back.Length - 1) back
            | None -> () ]
    |> List.map (fun c ->
        let i = c |> List.indexed |> List.minBy snd |> fst
        List.skip i c @ List.take i c)
    |> List.distinct
    |> List.sortBy (fun c -> c.Length, c)

// ---------------------------------------------------------------------------------------------------------------
// Which assemblies are the product.

/// Each project in the folders under root/dir: (its AssemblyName, or the project file's name; its folder).
let projects (root: string) (dir: string) : (string * string) list =
    let folder = Path.Combine(root, dir)
    if not (Directory.Exists folder) then []
    else
        [ for p in Directory.EnumerateFiles(folder, "*.*proj", SearchOption.AllDirectories) do
            if (p.EndsWith ".csproj" || p.EndsWith ".fsproj") && not (p.Contains "/obj/" || p.Contains "/bin/") then
                let m = Regex.Match(File.ReadAllText p, "<AssemblyName>([^<]+)</AssemblyName>")
                yield (if m.Success then m.Groups.[1].Value.Trim() else Path.GetFileNameWithoutExtension p), Path.GetDirectoryName p ]
        |> List.sort

/// The AssemblyName of each project in the folders under root/dir (or the project file's name).
let projectAssemblyNames (root: string) (dir: string) : string list = projects root dir |> List.map fst

/// The product assemblies: every project under src/ (found from the repository root), read from the folder of
/// built assemblies, or else from the project's own output of the same configuration (the TorchSharp bridge is
/// not referenced by the main suite, so that its output does not carry libtorch). Fails naming a project whose
/// assembly is in neither place (build the solution first).
let productAssemblies (root: string) (binFolder: string) : string list =
    // bin/<Configuration>/<tfm>/ of the test program: the same two folders under a product project.
    let tfm = DirectoryInfo(binFolder).Name
    let configuration = DirectoryInfo(binFolder).Parent.Name
    [ for name, dir in projects root "src" do
        let here = Path.Combine(binFolder, name + ".dll")
        let own = Path.Combine(dir, "bin", configuration, tfm, name + ".dll")
        if File.Exists here then yield here
        elif File.Exists own then yield own
        else failwith $"src/ has a project building {name}.dll, but neither {binFolder} nor {Path.GetDirectoryName own} has it: build the solution (dotnet build Samplers.sln -c {configuration}) so the architecture checks see it" ]

// ---------------------------------------------------------------------------------------------------------------
// The Markdown table.

/// Rows: namespace, assembly, depends on (counted namespaces; those in another assembly name it in parentheses).
let markdown (g: Graph) : string =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore
    line "| Namespace | Assembly | Depends on |"
    line "|---|---|---|"
    for KeyValue(ns, asms) in g.Namespaces do
        for asm in asms do
            let deps =
                g.EdgesByAssembly
                |> Map.toList
                |> List.choose (fun ((a, from, to'), (toAsms, _)) ->
                    if a = asm && from = ns then
                        let others = toAsms |> Set.remove asm
                        Some(if others.IsEmpty then $"`{to'}`" else $"""`{to'}` ({String.Join(", ", toAsms)})""")
                    else None)
            let deps = if deps.IsEmpty then "—" else String.Join(", ", deps)
            line $"| `{ns}` | {asm} | {deps} |"
    sb.ToString()

/// The table, then the namespace cycles found (each with one example reference per edge), as Markdown.
let report (g: Graph) : string =
    let sb = StringBuilder()
    sb.Append(markdown g) |> ignore
    let cs = cycles g
    sb.Append('\n') |> ignore
    if cs.IsEmpty then sb.Append("No namespace cycle.\n") |> ignore
    else
        sb.Append("Namespace cycles (strongly connected components, then the shortest cycle through each edge):\n\n```\n") |> ignore
        for c in cs do
            sb.Append($"""component {{ {String.Join(", ", c)} }}""").Append('\n') |> ignore
            for cyc in cyclesOfComponent g c do sb.Append(describeCycle g cyc).Append('\n') |> ignore
        sb.Append("```\n") |> ignore
    sb.ToString()
