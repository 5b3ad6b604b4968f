defmodule ConnReg.Transport do
  @moduledoc """
  Encodes a local pid as a 64-bit transport, so that a value written by
  another BEAM node, a C process, or a previous boot of this node is never
  decoded as some unrelated local process.

  A raw pid term cannot be shared: node B decodes node A's
  `:erlang.term_to_binary(self())` as one of B's own processes (both are
  `nonode@nohost`, or the same node name after a restart). So a transport
  carries the identity of the VM boot that wrote it:

      bits 63..32  boot tag: random, drawn once per VM boot (top bit set,
                   never 0xFFFFFFFF), kept in :persistent_term
      bits 31..15  the pid's serial (17 bits; OTP 25 uses 13)
      bits 14..0   the pid's number (15 bits, as in the external format)

  `decode/1` returns `{:ok, pid}` only for values carrying this boot's tag;
  every other value is `{:error, :foreign_transport}`: values written by
  another BEAM node or a previous boot of this node (another tag, except
  for a 1 in 2^31 chance of drawing the same one), and values written by C
  programs (small integers, OS pids, pointers: their top bit is clear). A
  local pid whose number does not fit the layout (a future OTP with wider
  pids) cannot be encoded: `encode/1` raises `ArgumentError`.

  One value of this boot's tag is reserved (`tombstone/0`): the
  `ConnReg.ConnectionRegistry` owner writes it while it removes the entry
  of a transport that died; it decodes as `{:error, :tombstone}`.
  """

  import Bitwise

  @tag_key {__MODULE__, :boot_tag}
  @low_mask 0xFFFF_FFFF
  @tombstone_low 0xFFFF_FFFF

  @on_load :init

  @doc false
  def init do
    case :persistent_term.get(@tag_key, nil) do
      nil -> :persistent_term.put(@tag_key, draw_tag())
      _ -> :ok
    end

    :ok
  end

  defp draw_tag do
    <<t::32>> = random_bytes(4)
    tag = t ||| 0x8000_0000
    if tag == 0xFFFF_FFFF, do: draw_tag(), else: tag
  end

  @doc "This boot's tag (the high 32 bits of every transport it encodes)."
  @spec boot_tag() :: pos_integer()
  def boot_tag, do: :persistent_term.get(@tag_key)

  @doc "The reserved value of this boot's tag that decodes as `{:error, :tombstone}`."
  @spec tombstone() :: non_neg_integer()
  def tombstone, do: boot_tag() <<< 32 ||| @tombstone_low

  @doc "Whether `value` was written by this boot (a pid of this VM or the tombstone)."
  @spec local?(non_neg_integer()) :: boolean()
  def local?(value) when is_integer(value), do: value >>> 32 == boot_tag()

  @doc """
  The transport for a pid of this VM. Raises `ArgumentError` for a pid of
  another node (a distributed Erlang peer), and for a pid of an earlier
  incarnation of this node's name (same node name, another creation: a pid
  term kept from before a restart of distribution, or read back from
  disk): their numbers mean nothing here, and would name some unrelated
  process of this VM.
  """
  @spec encode(pid()) :: non_neg_integer()
  def encode(pid) when is_pid(pid) do
    # NEW_PID_EXT: 131, 88, the node atom, then number, serial, creation (32 bits each).
    ext = :erlang.term_to_binary(pid)
    skip = byte_size(ext) - 12
    <<_::binary-size(skip), number::32, serial::32, creation::32>> = ext

    if node(pid) != node() or creation != :erlang.system_info(:creation) do
      raise ArgumentError, "ConnReg.Transport: #{inspect(pid)} is not a pid of this VM"
    end

    if number > 0x7FFF or serial > 0x1FFFF or (number == 0x7FFF and serial == 0x1FFFF) do
      raise ArgumentError,
            "ConnReg.Transport: #{inspect(pid)} does not fit the 32-bit pid layout"
    end

    boot_tag() <<< 32 ||| serial <<< 15 ||| number
  end

  @doc """
  The local pid a transport names: `{:ok, pid}`, `{:error, :foreign_transport}`
  for a value written by another node, boot or program, or
  `{:error, :tombstone}` for `tombstone/0`. The pid may be dead (as with
  `Registry`, an entry lasts until its owner has processed the exit).
  """
  @spec decode(non_neg_integer()) :: {:ok, pid()} | {:error, :foreign_transport | :tombstone}
  def decode(value), do: decode(value, boot_tag())

  @doc false
  # decode/1 with the boot tag at hand (ConnectionRegistry keeps it with its handle).
  def decode(value, tag) when is_integer(value) and value >= 0 do
    low = value &&& @low_mask

    cond do
      value >>> 32 != tag ->
        {:error, :foreign_transport}

      low == @tombstone_low ->
        {:error, :tombstone}

      true ->
        # "<0.Number.Serial>": node 0 is this node, whatever its name and
        # creation. Twice as fast here as binary_to_term of a NEW_PID_EXT.
        number = :erlang.integer_to_list(low &&& 0x7FFF)
        serial = :erlang.integer_to_list(low >>> 15)
        {:ok, :erlang.list_to_pid([?<, ?0, ?. | number ++ [?. | serial ++ [?>]]])}
    end
  end

  # The OS's entropy (the crypto application is not needed); without
  # /dev/urandom, a hash of the clock, the OS pid and a unique integer.
  defp random_bytes(n) do
    case :file.open(~c"/dev/urandom", [:read, :binary, :raw]) do
      {:ok, f} ->
        {:ok, bytes} = :file.read(f, n)
        :ok = :file.close(f)
        bytes

      {:error, _} ->
        seed = {System.os_time(), System.pid(), :erlang.unique_integer(), make_ref()}
        :binary.part(:erlang.md5(:erlang.term_to_binary(seed)), 0, n)
    end
  end
end
