// Makes TorchSharp's native shim (libLibTorchSharp.so) load where the system's libstdc++ is older than the GCC 13 one
// it was linked against. Compiled twice: into an MSBuild task (RoslynCodeTaskFactory, see Samplers.TorchSharp.targets)
// and, with SAMPLERS_NO_MSBUILD, into Samplers.TorchSharp so that the tests can exercise the ELF rewriting.
//
// Why this is safe: the shim asks for one symbol at GLIBCXX_3.4.32, _ZSt21ios_base_library_initv, which GCC 13's
// <iostream> references only to pull in libstdc++'s iostream initialisation (older libstdc++ does that by itself).
// No relocation uses it, so the symbol is never looked up; only the version requirement stops the loader. We rewrite
// that requirement to GLIBCXX_3.4.30 (same length, with its ELF hash), and refuse whenever anything else depends on
// GLIBCXX_3.4.32 (then a real newer libstdc++ is needed). The task factory compiles against netstandard2.0: no spans here.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Samplers.Build
{
    /// <summary>What <see cref="ElfGlibcxxPatch.Apply"/> did.</summary>
    internal enum GlibcxxPatchOutcome { Patched, NotNeeded, Refused }

    /// <summary>Rewrites the GLIBCXX_3.4.32 requirement of an ELF shared library to GLIBCXX_3.4.30.</summary>
    internal static class ElfGlibcxxPatch
    {
        internal const string From = "GLIBCXX_3.4.32";
        internal const string To = "GLIBCXX_3.4.30";
        // The only symbols we accept at From: GCC 13's iostream-initialisation anchor.
        private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal) { "_ZSt21ios_base_library_initv" };

        private const uint ShtRela = 4, ShtDynsym = 11, ShtVerneed = 0x6ffffffe, ShtVersym = 0x6fffffff;

        /// <summary>The standard ELF hash of a version name (vna_hash).</summary>
        internal static uint ElfHash(string name)
        {
            uint h = 0;
            foreach (byte c in Encoding.ASCII.GetBytes(name))
            {
                h = (h << 4) + c;
                uint g = h & 0xf0000000;
                if (g != 0) h ^= g >> 24;
                h &= ~g;
            }
            return h;
        }

        /// <summary>The version requirements of <paramref name="elf"/> as "file:version" (e.g. "libstdc++.so.6:GLIBCXX_3.4.30").</summary>
        /// <exception cref="InvalidDataException">See <see cref="Apply"/>.</exception>
        internal static List<string> Requirements(byte[] elf, string what)
        {
            var found = new List<string>();
            var sections = Sections(elf, what);
            int verneed = Array.FindIndex(sections, s => s.Type == ShtVerneed);
            if (verneed < 0) return found;
            var strtab = sections[sections[verneed].Link];
            long need = (long)sections[verneed].Offset;
            for (uint n = 0; n < sections[verneed].Info; n++)
            {
                Check(elf, need, 16, "version requirement", what);
                string file = Str(elf, strtab.Offset, U32(elf, need + 4, what), what);
                long aux = need + U32(elf, need + 8, what);
                for (int a = 0; a < U16(elf, need + 2, what); a++)
                {
                    found.Add(file + ":" + Str(elf, strtab.Offset, U32(elf, aux + 8, what), what));
                    aux += U32(elf, aux + 12, what);
                }
                uint next = U32(elf, need + 12, what);
                if (next == 0) break;
                need += next;
            }
            return found;
        }

        private static (uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntSize)[] Sections(byte[] elf, string what)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException($"{what}: expected an ELF file (bytes 7F 45 4C 46 at offset 0), found {Hex(elf, 0, Math.Min(4, elf.Length))}; is this the Linux build of libLibTorchSharp.so?");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"{what}: expected a 64-bit little-endian ELF (class 2, data 1 at offsets 4-5), found class {elf[4]}, data {elf[5]}.");
            ulong shoff = U64(elf, 0x28, what);
            int shentsize = U16(elf, 0x3A, what), shnum = U16(elf, 0x3C, what);
            if (shentsize < 64) throw new InvalidDataException($"{what}: section header size at offset 0x3A is {shentsize}, expected 64.");
            var sections = new (uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntSize)[shnum];
            for (int i = 0; i < shnum; i++)
            {
                long h = Check(elf, (long)shoff + (long)i * shentsize, 64, $"section header {i}", what);
                sections[i] = (U32(elf, h + 4, what), U64(elf, h + 24, what), U64(elf, h + 32, what), U32(elf, h + 40, what), U32(elf, h + 44, what), U64(elf, h + 56, what));
            }
            return sections;
        }

        /// <summary>Rewrites <paramref name="elf"/> in place; <paramref name="detail"/> says what was found.</summary>
        /// <exception cref="InvalidDataException">Not a 64-bit little-endian ELF, or a table points outside the file (the message says which and where).</exception>
        internal static GlibcxxPatchOutcome Apply(byte[] elf, string what, out string detail)
        {
            var sections = Sections(elf, what);

            int verneed = Array.FindIndex(sections, s => s.Type == ShtVerneed);
            if (verneed < 0) { detail = "no version requirements (.gnu.version_r)"; return GlibcxxPatchOutcome.NotNeeded; }
            var strtab = sections[sections[verneed].Link];
            // Walk Elf64_Verneed / Elf64_Vernaux.
            long need = (long)sections[verneed].Offset;
            long auxAt = -1, nameAt = -1;
            int versionIndex = -1;
            for (uint n = 0; n < sections[verneed].Info; n++)
            {
                Check(elf, need, 16, "version requirement", what);
                int count = U16(elf, need + 2, what);
                string file = Str(elf, strtab.Offset, U32(elf, need + 4, what), what);
                long aux = need + U32(elf, need + 8, what);
                for (int a = 0; a < count; a++)
                {
                    Check(elf, aux, 16, "version requirement entry", what);
                    uint nameOff = U32(elf, aux + 8, what);
                    if (file == "libstdc++.so.6" && Str(elf, strtab.Offset, nameOff, what) == From)
                    {
                        auxAt = aux;
                        nameAt = (long)strtab.Offset + nameOff;
                        versionIndex = U16(elf, aux + 6, what) & 0x7fff;
                    }
                    aux += U32(elf, aux + 12, what);
                }
                uint next = U32(elf, need + 12, what);
                if (next == 0) break;
                need += next;
            }
            if (auxAt < 0) { detail = $"no {From} requirement (already patched, or a build that does not need it)"; return GlibcxxPatchOutcome.NotNeeded; }

            // Which dynamic symbols carry that version, and does any relocation use them?
            int dynsym = Array.FindIndex(sections, s => s.Type == ShtDynsym);
            int versym = Array.FindIndex(sections, s => s.Type == ShtVersym);
            if (dynsym < 0 || versym < 0) { detail = "no dynamic symbol or version table"; return GlibcxxPatchOutcome.Refused; }
            var syms = sections[dynsym];
            var names = sections[syms.Link];
            long symCount = (long)(syms.Size / 24);
            var atFrom = new List<(long Index, string Name)>();
            for (long i = 0; i < symCount; i++)
            {
                int v = U16(elf, (long)sections[versym].Offset + 2 * i, what) & 0x7fff;
                if (v == versionIndex) atFrom.Add((i, Str(elf, names.Offset, U32(elf, (long)syms.Offset + 24 * i, what), what)));
            }
            foreach ((long _, string name) in atFrom)
            {
                if (!Allowed.Contains(name))
                {
                    detail = $"{name} needs {From}; only the iostream anchor can be redirected, so this build needs a libstdc++ with {From} (GCC 13 or later)";
                    return GlibcxxPatchOutcome.Refused;
                }
            }
            for (int s = 0; s < sections.Length; s++)
            {
                if (sections[s].Type != ShtRela || sections[s].Link != dynsym) continue;
                for (ulong r = 0; r + 24 <= sections[s].Size; r += 24)
                {
                    long sym = (long)(U64(elf, (long)(sections[s].Offset + r) + 8, what) >> 32);
                    foreach ((long index, string name) in atFrom)
                    {
                        if (index == sym)
                        {
                            detail = $"a relocation uses {name}, so it must really exist; this build needs a libstdc++ with {From} (GCC 13 or later)";
                            return GlibcxxPatchOutcome.Refused;
                        }
                    }
                }
            }

            Encoding.ASCII.GetBytes(To).CopyTo(elf, nameAt);
            uint hash = ElfHash(To);
            for (int i = 0; i < 4; i++) elf[auxAt + i] = (byte)(hash >> (8 * i));
            detail = $"{From} -> {To} (only {string.Join(", ", atFrom.ConvertAll(a => a.Name))} was at {From}, and no relocation uses it)";
            return GlibcxxPatchOutcome.Patched;
        }

        /// <summary>Whether a libstdc++.so.6 on the usual library paths defines <paramref name="version"/>;
        /// null when none was found.</summary>
        internal static bool? SystemHas(string version, out string? where)
        {
            var dirs = new List<string>();
            string? ld = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ld)) dirs.AddRange(ld!.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
            dirs.AddRange(new[] { "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib" });
            byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
            foreach (string d in dirs)
            {
                string p = Path.Combine(d, "libstdc++.so.6");
                if (!File.Exists(p)) continue;
                where = p;
                return IndexOf(File.ReadAllBytes(p), needle) >= 0;
            }
            where = null;
            return null;
        }

        /// <summary>Patches the file at <paramref name="path"/> (temp file + rename: never half-written).</summary>
        internal static GlibcxxPatchOutcome ApplyToFile(string path, out string detail)
        {
            byte[] elf = File.ReadAllBytes(path);
            GlibcxxPatchOutcome outcome = Apply(elf, path, out detail);
            if (outcome != GlibcxxPatchOutcome.Patched) return outcome;
            string temp = path + ".patching";
            File.WriteAllBytes(temp, elf);
            File.Replace(temp, path, null); // a rename: readers see the old file or the new one, never half of it
            return outcome;
        }

        internal static int IndexOf(byte[] hay, byte[] needle)
        {
            for (int i = 0; i + needle.Length <= hay.Length; i++)
            {
                int k = 0;
                while (k < needle.Length && hay[i + k] == needle[k]) k++;
                if (k == needle.Length) return i;
            }
            return -1;
        }

        private static long Check(byte[] b, long at, long length, string table, string what)
        {
            if (at < 0 || at + length > b.Length)
                throw new InvalidDataException($"{what}: the {table} at offset {at} (+{length} bytes) lies outside the file ({b.Length} bytes); the file is truncated or not a shared library.");
            return at;
        }

        private static ushort U16(byte[] b, long at, string what) => BitConverter.ToUInt16(b, (int)Check(b, at, 2, "field", what));
        private static uint U32(byte[] b, long at, string what) => BitConverter.ToUInt32(b, (int)Check(b, at, 4, "field", what));
        private static ulong U64(byte[] b, long at, string what) => BitConverter.ToUInt64(b, (int)Check(b, at, 8, "field", what));

        private static string Str(byte[] b, ulong table, uint offset, string what)
        {
            long start = Check(b, (long)table + offset, 1, "string", what);
            int end = Array.IndexOf(b, (byte)0, (int)start);
            if (end < 0) throw new InvalidDataException($"{what}: the string at offset {start} has no terminating zero.");
            return Encoding.ASCII.GetString(b, (int)start, end - (int)start);
        }

        private static string Hex(byte[] b, int at, int n) => n == 0 ? "nothing (empty file)" : BitConverter.ToString(b, at, n).Replace('-', ' ');
    }

#if !SAMPLERS_NO_MSBUILD
    /// <summary>MSBuild task: patches the build output's copies of libLibTorchSharp.so when the system's libstdc++ lacks GLIBCXX_3.4.32.</summary>
    public sealed class PatchLibTorchSharp : Microsoft.Build.Utilities.Task
    {
        /// <summary>The copies to patch (in the build or publish output, never the NuGet cache).</summary>
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        /// <summary>auto (patch only when the system's libstdc++ lacks GLIBCXX_3.4.32), always, or never.</summary>
        public string Mode { get; set; } = "auto";

        /// <inheritdoc/>
        public override bool Execute()
        {
            string mode = (Mode ?? "auto").Trim().ToLowerInvariant();
            if (mode == "never") return true;
            if (mode != "auto" && mode != "always")
            {
                Log.LogError($"SamplersLibTorchSharpPatch must be auto, always or never, but was '{Mode}'.");
                return false;
            }
            if (mode == "auto")
            {
                bool? has = ElfGlibcxxPatch.SystemHas(ElfGlibcxxPatch.From, out string? where);
                if (has == true)
                {
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{where} has {ElfGlibcxxPatch.From}: libLibTorchSharp.so left as shipped.");
                    return true;
                }
            }
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                try
                {
                    GlibcxxPatchOutcome outcome = ElfGlibcxxPatch.ApplyToFile(path, out string detail);
                    if (outcome == GlibcxxPatchOutcome.Patched)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High, $"Patched {path}: {detail}; the system's libstdc++ stops before {ElfGlibcxxPatch.From} (see docs/TRAINING.md).");
                    else if (outcome == GlibcxxPatchOutcome.Refused)
                        Log.LogWarning($"Not patching {path}: {detail}. TorchSharp will fail to load on this system.");
                    else
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{path}: {detail}.");
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is InvalidDataException)
                {
                    Log.LogError($"Could not patch {path}: {ex.Message}");
                    return false;
                }
            }
            return true;
        }
    }
#endif
}
