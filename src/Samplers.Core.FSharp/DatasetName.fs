namespace Samplers.Core.Tfds

// TFDS dataset names and versions (TFDS_FORMAT.md 1.3, 1.4): `name`, `name:1.2.3`, `name/config:1.*.*`.
// Pure parsing and selection; listing directories is the catalog's job.

open System
open System.Globalization
open System.Text.RegularExpressions
open System.Runtime.InteropServices
open Samplers

/// Compiled once: a `static member` property would build a new Regex on every access.
module internal NamePatterns =
    let strictVersion = Regex(@"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})$", RegexOptions.CultureInvariant)
    let firstCap = Regex("(.)([A-Z][a-z0-9]+)", RegexOptions.CultureInvariant)
    let allCap = Regex("([a-z0-9])([A-Z])", RegexOptions.CultureInvariant)

/// <summary>A resolved dataset version MAJOR.MINOR.PATCH, ordered numerically (3.0.10 &gt; 3.0.9).</summary>
/// <remarks>Structural equality and comparison over (Major, Minor, Patch), in that field order.</remarks>
[<Struct>]
type DatasetVersion =
    { /// <summary>Major part.</summary>
      Major: int
      /// <summary>Minor part.</summary>
      Minor: int
      /// <summary>Patch part.</summary>
      Patch: int }

    /// <summary>Formats as <c>x.y.z</c>.</summary>
    override v.ToString() = $"{v.Major}.{v.Minor}.{v.Patch}"

    /// <summary>Parses a resolved version: three parts, each 0 or a decimal without a leading zero (TFDS 4.9);
    /// anything else (<c>03.0.1</c>, <c>3.0</c>, <c>3.0.1.incomplete</c>, <c>latest</c>) is not a version.</summary>
    static member TryParse(text: string, [<Out>] result: outref<DatasetVersion>) : bool =
        result <- Unchecked.defaultof<DatasetVersion>
        if isNull (box text) then false
        else
            let m = NamePatterns.strictVersion.Match text
            if not m.Success then false
            else
                let p (i: int) = Int32.Parse(m.Groups[i].Value, CultureInfo.InvariantCulture)
                result <- { Major = p 1; Minor = p 2; Patch = p 3 }
                true

/// <summary>A parsed dataset name. Absent parts are empty strings.</summary>
type DatasetNameSpec =
    { /// <summary>The dataset name, normalised to snake_case (<c>OxfordFlowers102</c> -&gt; <c>oxford_flowers102</c>).</summary>
      Name: string
      /// <summary>The config, as written; empty when none was given.</summary>
      Config: string
      /// <summary>The requested version (may hold <c>*</c> parts); empty when none was given.</summary>
      Version: string }
    /// <summary>True when a config was given.</summary>
    member n.HasConfig = n.Config.Length > 0
    /// <summary>True when a version (exact or wildcard) was given.</summary>
    member n.HasVersion = n.Version.Length > 0
    /// <summary>True when the version is exact (no <c>*</c>).</summary>
    member n.IsExactVersion = n.Version.Length > 0 && not (n.Version.Contains '*')

/// <summary>Parsing of TFDS dataset names and selection of versions.</summary>
[<AbstractClass; Sealed>]
type DatasetNames =
    /// <summary>TFDS's CamelCase -&gt; snake_case normalisation of dataset names.</summary>
    static member ToSnakeCase(name: string) : string =
        if isNull (box name) then nullArg "name"
        let s1 = NamePatterns.firstCap.Replace(name, "$1_$2")
        NamePatterns.allCap.Replace(s1, "$1_$2").ToLowerInvariant()

    /// <summary>Parses <c>name</c>, <c>name:1.2.3</c>, <c>name/config</c>, <c>name/config:1.*.*</c>.
    /// Community namespaces (<c>ns:name</c>) and builder kwargs (<c>name/a=1</c>) are refused.</summary>
    /// <exception cref="SpecFormatException">The name is malformed; the message shows it and marks the position.</exception>
    static member Parse(spec: string) : DatasetNameSpec =
        if isNull (box spec) then nullArg "spec"
        let fail pos what : 'T = SpecText.fail spec pos what
        if spec.Length = 0 then fail -1 "empty dataset name"
        let eq = spec.IndexOf '='
        if eq >= 0 then fail eq "builder keyword arguments (name/key=value) are not supported; pass the config and version only"
        let isNameChar c = Char.IsAsciiLetterOrDigit c || c = '_'
        let isConfigChar c = Char.IsAsciiLetterOrDigit c || c = '_' || c = '+' || c = '.' || c = '-'
        // ds_name
        let mutable i = 0
        if not (Char.IsAsciiLetter spec[0]) then
            fail 0 "a dataset name starts with a letter ([A-Za-z][A-Za-z0-9_]*)"
        while i < spec.Length && isNameChar spec[i] do i <- i + 1
        let name = spec.Substring(0, i)
        if i < spec.Length && spec[i] = ':' && i + 1 < spec.Length && Char.IsAsciiLetter spec[i + 1] then
            fail 0 $"community namespaces ('{name}:...') are not supported; use a dataset prepared in a local data directory"
        let mutable config = ""
        if i < spec.Length && spec[i] = '/' then
            let start = i + 1
            i <- start
            while i < spec.Length && isConfigChar spec[i] do i <- i + 1
            if i = start then fail start "expected a config name ([A-Za-z0-9_+.-]+) after '/'"
            config <- spec.Substring(start, i - start)
            // A config names a folder: '.' and '..' would name the dataset folder itself or one outside it.
            if config = "." || config = ".." then fail start $"config '{config}' is not a config name (it would name a folder outside the dataset)"
        let mutable version = ""
        if i < spec.Length && spec[i] = ':' then
            let start = i + 1
            i <- start
            while i < spec.Length && (Char.IsAsciiDigit spec[i] || spec[i] = '*' || spec[i] = '.') do i <- i + 1
            let v = spec.Substring(start, i - start)
            let parts = v.Split '.'
            if parts.Length <> 3 then fail start $"a version has three parts x.y.z (each digits or '*'), found '{v}'"
            let mutable p = start
            for part in parts do
                if not (part = "*" || (part.Length > 0 && Seq.forall Char.IsAsciiDigit part)) then
                    fail p $"a version part is digits or '*', found '{part}'"
                p <- p + part.Length + 1
            version <- v
        if i < spec.Length then
            if spec[i] = '/' then fail i "text after the version (builder keyword arguments) is not supported"
            else fail i $"unexpected character '{spec[i]}' (expected '/config' or ':x.y.z')"
        { Name = DatasetNames.ToSnakeCase name; Config = config; Version = version }

    /// <summary>True when a resolved version matches a requested one (<c>*</c> parts match anything).</summary>
    static member Matches(requested: string, version: DatasetVersion) : bool =
        if isNull (box requested) then nullArg "requested"
        let parts = requested.Split '.'
        if parts.Length <> 3 then invalidArg "requested" $"A version has three parts, found '{requested}'."
        let ok (p: string) (v: int) =
            p = "*" || (match Int32.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture) with | true, x -> x = v | _ -> false)
        ok parts[0] version.Major && ok parts[1] version.Minor && ok parts[2] version.Patch

    /// <summary>Mode A selection (TFDS_FORMAT.md 1.4): among directory names, the highest valid version matching
    /// <paramref name="requested"/> (empty = any). Returns the empty string when none matches. Names that are not
    /// valid versions are ignored.</summary>
    static member SelectHighest(candidates: string[], requested: string) : string =
        if isNull (box candidates) then nullArg "candidates"
        let requested = if isNull (box requested) then "" else requested
        let mutable best = ValueNone
        for c in candidates do
            let mutable v = Unchecked.defaultof<DatasetVersion>
            if DatasetVersion.TryParse(c, &v) && (requested.Length = 0 || DatasetNames.Matches(requested, v)) then
                match best with
                | ValueSome (b: DatasetVersion, _) when compare b v >= 0 -> ()
                | _ -> best <- ValueSome (v, c)
        match best with
        | ValueSome (_, c) -> c
        | ValueNone -> ""

    /// <summary>The valid version names among <paramref name="candidates"/>, highest first.</summary>
    static member ValidVersions(candidates: string[]) : string[] =
        if isNull (box candidates) then nullArg "candidates"
        candidates
        |> Array.choose (fun c ->
            let mutable v = Unchecked.defaultof<DatasetVersion>
            if DatasetVersion.TryParse(c, &v) then Some (v, c) else None)
        |> Array.sortWith (fun (a, _) (b, _) -> compare b a)
        |> Array.map snd
