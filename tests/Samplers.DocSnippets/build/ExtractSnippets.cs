// Turns every ```csharp block of the documentation into a C# file that the DocSnippets project compiles, so a stale
// snippet fails the build with an error at the markdown file and line (#line directives). Compiled by MSBuild's
// RoslynCodeTaskFactory (see Samplers.DocSnippets.csproj), against netstandard2.0: no spans or newer APIs here.
// The rules are in tests/Samplers.DocSnippets/README.md.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.RegularExpressions;

namespace Samplers.DocSnippets.Build
{
    /// <summary>MSBuild task: writes one .g.cs file per C# snippet of <see cref="Documents"/> into <see cref="OutputDirectory"/>.</summary>
    public sealed class ExtractSnippets : Microsoft.Build.Utilities.Task
    {
        /// <summary>The markdown files to read.</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Documents { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>The repository root: generated file names and comments use paths relative to it.</summary>
        [Microsoft.Build.Framework.Required]
        public string RepoRoot { get; set; } = "";

        /// <summary>Where the .g.cs files go (under obj/); files there that no snippet produced any more are deleted.</summary>
        [Microsoft.Build.Framework.Required]
        public string OutputDirectory { get; set; } = "";

        /// <summary>The generated files, to compile.</summary>
        [Microsoft.Build.Framework.Output]
        public Microsoft.Build.Framework.ITaskItem[] Generated { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        // A fence that opens a C# block; the language tag is csharp, cs or c#.
        private static readonly Regex Open = new Regex(@"^(\s*)```\s*(csharp|cs|c#)\s*$", RegexOptions.IgnoreCase);
        private static readonly Regex AnyFence = new Regex(@"^\s*```");
        // <!-- snippet: skip (reason) -->, <!-- snippet: declarations -->
        private static readonly Regex Marker = new Regex(@"^\s*<!--\s*snippet\s*:\s*([a-z]+)\s*(.*?)\s*-->\s*$", RegexOptions.IgnoreCase);
        // A using directive (not a using statement or declaration): using N.S; using static N.T; using A = N.T;
        private static readonly Regex UsingDirective = new Regex(@"^\s*(global\s+)?using\s+(static\s+)?([A-Za-z_][\w]*\s*=\s*)?[A-Za-z_][\w.<>, ]*\s*;\s*(//.*)?$");

        // What a fragment (a snippet without using directives) sees besides the SDK's implicit usings.
        private static readonly string[] FragmentUsings =
        {
            "Samplers", "Samplers.Core", "Samplers.Imaging", "Samplers.Tfds", "Samplers.Experiments",
            "Samplers.TorchSharp", "TorchSharp", "Microsoft.Extensions.Logging",
        };

        /// <inheritdoc/>
        public override bool Execute()
        {
            Directory.CreateDirectory(OutputDirectory);
            var written = new List<Microsoft.Build.Framework.ITaskItem>();
            var keep = new HashSet<string>(StringComparer.Ordinal);
            int skipped = 0;
            foreach (var doc in Documents)
            {
                string path = Path.GetFullPath(doc.ItemSpec);
                string rel = Relative(path);
                string[] lines = File.ReadAllLines(path);
                for (int i = 0; i < lines.Length; i++)
                {
                    Match open = Open.Match(lines[i]);
                    if (!open.Success) continue;
                    int indent = open.Groups[1].Value.Length;
                    int first = i + 1; // 0-based index of the first code line
                    int end = first;
                    while (end < lines.Length && !AnyFence.IsMatch(lines[end])) end++;
                    if (end == lines.Length)
                    {
                        Log.LogError(null, null, null, path, i + 1, 1, 0, 0, $"the ```csharp block opened here is never closed");
                        return false;
                    }
                    var body = new List<string>();
                    for (int k = first; k < end; k++) body.Add(Unindent(lines[k], indent));

                    string kind = "", argument = "";
                    int m = i - 1;
                    while (m >= 0 && lines[m].Trim().Length == 0) m--;
                    if (m >= 0)
                    {
                        Match marker = Marker.Match(lines[m]);
                        if (marker.Success) { kind = marker.Groups[1].Value.ToLowerInvariant(); argument = marker.Groups[2].Value; }
                    }
                    i = end;

                    if (kind == "skip")
                    {
                        if (!Regex.IsMatch(argument, @"^\(.+\)$"))
                        {
                            Log.LogError(null, null, null, path, m + 1, 1, 0, 0, "a skipped snippet says why: <!-- snippet: skip (reason) -->");
                            return false;
                        }
                        skipped++;
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"{rel}:{first + 1}: snippet skipped {argument}");
                        continue;
                    }
                    if (kind != "" && kind != "declarations")
                    {
                        Log.LogError(null, null, null, path, m + 1, 1, 0, 0, $"unknown snippet marker '{kind}': use <!-- snippet: skip (reason) --> or <!-- snippet: declarations -->");
                        return false;
                    }

                    // Named after the fence's line; #line maps the code to its own lines (the fence is line `first`, 1-based).
                    string name = Regex.Replace(rel, @"[^A-Za-z0-9]", "_") + "_L" + first;
                    string file = Path.Combine(OutputDirectory, name + ".g.cs");
                    string code = Generate(path, rel, first + 1, body, kind == "declarations", name);
                    if (!File.Exists(file) || File.ReadAllText(file) != code) File.WriteAllText(file, code);
                    keep.Add(Path.GetFullPath(file));
                    written.Add(new Microsoft.Build.Utilities.TaskItem(file));
                }
            }
            foreach (string stale in Directory.GetFiles(OutputDirectory, "*.g.cs"))
                if (!keep.Contains(Path.GetFullPath(stale))) File.Delete(stale);
            Generated = written.ToArray();
            Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"Doc snippets: {written.Count} compiled, {skipped} skipped (marked), from {Documents.Length} markdown files.");
            return true;
        }

        // firstLine: the 1-based markdown line of the snippet's first code line (the fence is the line before).
        private static string Generate(string path, string rel, int firstLine, List<string> body, bool declarations, string name)
        {
            // Leading using directives (with blank and comment lines among them) go to the top of the file.
            int k = 0, lastUsing = -1;
            while (k < body.Count)
            {
                string t = body[k].Trim();
                if (UsingDirective.IsMatch(body[k])) lastUsing = k;
                else if (t.Length != 0 && !t.StartsWith("//")) break;
                k++;
            }
            int split = lastUsing + 1;
            bool program = split > 0;
            string at = "#line " + "{0} \"" + path.Replace("\\", "\\\\") + "\"";
            var sb = new StringBuilder();
            sb.AppendLine("// <auto-generated/> from " + rel + " (code from line " + firstLine + ") by tests/Samplers.DocSnippets; edit the markdown, not this file.");
            sb.AppendLine("#nullable enable");
            sb.AppendLine("#pragma warning disable CS1998, CS0168, CS0219, CS0162, CS0164, CS8321 // unused locals and awaits are normal in a snippet");
            if (!program)
                foreach (string u in FragmentUsings) sb.AppendLine("using " + u + ";");
            if (program)
            {
                sb.AppendLine(string.Format(at, firstLine));
                for (int i = 0; i < split; i++) sb.AppendLine(body[i]);
                sb.AppendLine("#line default");
            }
            sb.AppendLine();
            if (declarations)
            {
                sb.AppendLine("namespace DocSnippetsGenerated." + name);
                sb.AppendLine("{");
            }
            else
            {
                sb.AppendLine("namespace DocSnippetsGenerated");
                sb.AppendLine("{");
                // A program (a snippet that starts with its using directives) sees nothing else; a fragment sees the
                // names a reader supplies (SnippetContext.cs).
                sb.AppendLine("internal sealed class " + name + (program ? "" : " : SnippetContext"));
                sb.AppendLine("{");
                sb.AppendLine("internal static async System.Threading.Tasks.Task Run()");
                sb.AppendLine("{");
            }
            sb.AppendLine(string.Format(at, firstLine + split));
            for (int i = split; i < body.Count; i++) sb.AppendLine(body[i]);
            sb.AppendLine("#line default");
            sb.AppendLine(declarations ? "}" : "}\n}\n}");
            return sb.ToString();
        }

        private static string Unindent(string line, int indent)
        {
            int n = 0;
            while (n < indent && n < line.Length && line[n] == ' ') n++;
            return line.Substring(n);
        }

        private string Relative(string full)
        {
            string root = Path.GetFullPath(RepoRoot).TrimEnd('/', '\\') + Path.DirectorySeparatorChar;
            return full.StartsWith(root, StringComparison.Ordinal) ? full.Substring(root.Length).Replace('\\', '/') : full;
        }
    }
}
