using System.Runtime.InteropServices;

namespace Portcullis.Transport;

/// <summary>
/// The Linux system calls for batched UDP (recvmmsg/sendmmsg, since Linux 2.6.33/3.0), with the
/// x86-64/arm64 struct layouts: one call moves up to a batch of datagrams, which is where most of
/// a small query's cost goes (see docs/performance.md).
/// </summary>
internal static unsafe partial class LinuxUdp
{
    public const int MSG_WAITFORONE = 0x10000;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_TRUNC = 0x20;
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEPORT = 15;
    public const int EINTR = 4;
    public const int EAGAIN = 11;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    public static bool IsSupported =>
        OperatingSystem.IsLinux() && (RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64);

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    public static partial int RecvMmsg(nint fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMmsg(nint fd, MMsgHdr* messages, uint count, int flags);
}
