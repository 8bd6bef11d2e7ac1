using System.Globalization;
using System.Text;

namespace Samplers.Cli;

/// <summary>
/// Text that came from a dataset (class names, feature keys, descriptions, file names) made safe to print: every control
/// character (C0, including ESC, DEL and C1) is written as <c>\xHH</c>, so a labels file cannot set the terminal's title,
/// clear the screen or forge lines. stdout passes through <see cref="Escape"/> in <see cref="OutputWriter"/> (keeping the
/// tool's own line breaks); tables escape every cell fully; error and status lines on stderr are escaped before writing.
/// JSON needs none of this: the JSON writer escapes control characters itself (<c>\u001B</c>).
/// </summary>
internal static class TerminalText
{
    /// <summary>C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F).</summary>
    public static bool IsControl(char c) => c < 0x20 || (c >= 0x7F && c <= 0x9F);

    /// <summary><paramref name="text"/> with every control character as <c>\xHH</c>; with <paramref name="keepLineBreaks"/>
    /// the line feed is kept (the tool's own line structure), everything else, carriage return and tab included, is escaped.</summary>
    public static string Escape(string? text, bool keepLineBreaks = false)
    {
        if (string.IsNullOrEmpty(text)) return text ?? "";
        int i = 0;
        while (i < text.Length && !(IsControl(text[i]) && !(keepLineBreaks && text[i] == '\n'))) i++;
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length + 8).Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (IsControl(c) && !(keepLineBreaks && c == '\n')) sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append(c);
        }
        return sb.ToString();
    }
}
