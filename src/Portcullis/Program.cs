namespace Portcullis;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("usage: portcullis zone check FILE --origin ORIGIN [--print]");
        return 64;
    }
}
