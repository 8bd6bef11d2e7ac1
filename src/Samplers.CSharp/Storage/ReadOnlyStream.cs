namespace Samplers.Storage;

/// <summary>A forward-only, read-only stream: the members every wrapper of an object's body answers the same way, so a
/// wrapper writes only its reads and its dispose.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public sealed override bool CanRead => true;
    public sealed override bool CanSeek => false;
    public sealed override bool CanWrite => false;
    public sealed override long Length => throw new NotSupportedException();
    public sealed override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public sealed override void Flush() { }
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public sealed override void SetLength(long value) => throw new NotSupportedException();
    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
