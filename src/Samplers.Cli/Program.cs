namespace Samplers.Cli;

/// <summary>Entry point of the <c>samplers</c> command-line tool.</summary>
public static class Program
{
    /// <summary>Runs the tool; the exit code is 0 on success, 1 on a usage error, 2 on a data error.</summary>
    public static int Main(string[] args)
    {
        Console.WriteLine("samplers: commands arrive with issue 6");
        return 0;
    }
}
