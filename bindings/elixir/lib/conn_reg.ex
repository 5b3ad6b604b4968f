defmodule ConnReg do
  @moduledoc """
  The raw connreg API: a registry of connection id (a binary of 1..key_max
  bytes) -> transport (an unsigned 64-bit integer) in one POSIX
  shared-memory segment that every process on the host (C gateways, other
  BEAM nodes, the `connreg` CLI) can open by name.

  Every call is short and runs on the calling scheduler, except:

    * `create/2`, `open/1`, `open_or_create/2` and `close/1` run on a dirty
      I/O scheduler (an open may wait up to 2 s for a creator to finish);
    * `wait/4` runs on a dirty I/O scheduler, in slices of at most 100 ms,
      so a caller that is killed frees its scheduler within 100 ms;
    * `to_list/1` (and `foreach/2`, `stream/1`) and `check/1` run on a
      dirty CPU scheduler; `get_bulk/2` moves there above 4096 ids.

  Each BEAM scheduler thread that calls in takes one reader slot in the
  segment on its first call (and keeps it until `close/1`). A new
  registry's `:max_threads` therefore defaults to `default_max_threads/0`,
  which covers every scheduler thread of this VM (normal, dirty CPU and
  dirty I/O) with room left for other processes.

  Errors are `{:error, reason}`. Id operations return `:not_found` for a
  missing id; other reasons are errno names as atoms (`:enospc`,
  `:enametoolong`, `:eagain`, `:einval`, ...; `strerror/1` describes them),
  `:closed` after `close/1`, and for `open/1` of a missing segment
  `:enoent`. Arguments of the wrong type raise (`ArgumentError` from the
  NIF, `FunctionClauseError` for a name that is not a binary).
  """

  alias ConnReg.Nif

  @typedoc "A registry handle (a NIF resource; closed when garbage collected)."
  @type t :: reference()
  @type id :: binary()
  @type transport :: 0..0xFFFF_FFFF_FFFF_FFFF
  @type reason :: atom()

  @transport_is_pid 0x1
  @max_slice_ms 100

  @doc """
  Reader slots a new registry gets by default: at least 512 (the library's
  default) and at least four times the scheduler threads of this VM
  (`:schedulers` + `:dirty_cpu_schedulers` + `:dirty_io_schedulers`), so
  that a few more BEAM nodes and tools can attach too.
  """
  @spec default_max_threads() :: pos_integer()
  def default_max_threads, do: max(512, 4 * scheduler_threads())

  @doc "Scheduler threads of this VM that can call a NIF (normal + dirty CPU + dirty I/O)."
  @spec scheduler_threads() :: pos_integer()
  def scheduler_threads do
    :erlang.system_info(:schedulers) + :erlang.system_info(:dirty_cpu_schedulers) +
      :erlang.system_info(:dirty_io_schedulers)
  end

  @doc """
  Creates a new registry called `name` (`"/"` then 1..200 characters of
  `[A-Za-z0-9._-]`). `{:error, :eexist}` if the name is taken.

  Options: `:capacity` (live ids, default 65536), `:key_max` (longest id in
  bytes, default 64), `:mode` (default `0o600`), `:max_threads` (default
  `default_max_threads/0`), `:transport_is_pid` (default `false`: the low
  32 bits of each transport are an OS pid, for `connreg reap`).
  """
  @spec create(String.t(), keyword()) :: {:ok, t()} | {:error, reason()}
  def create(name, opts \\ []) when is_binary(name) do
    {cap, key_max, mode, threads, flags} = config(opts)
    Nif.create(name, cap, key_max, mode, threads, flags)
  end

  @doc "Attaches to an existing registry; `{:error, :enoent}` if there is none."
  @spec open(String.t()) :: {:ok, t()} | {:error, reason()}
  def open(name) when is_binary(name), do: Nif.open(name)

  @doc """
  Opens the registry, creating it (with `opts`, as `create/2`) if it does
  not exist. Returns whether this call created it. An existing registry is
  opened as it is, whatever `opts` say.
  """
  @spec open_or_create(String.t(), keyword()) :: {:ok, t(), boolean()} | {:error, reason()}
  def open_or_create(name, opts \\ []) when is_binary(name) do
    {cap, key_max, mode, threads, flags} = config(opts)
    Nif.open_or_create(name, cap, key_max, mode, threads, flags)
  end

  @doc """
  Detaches: waits for calls in flight on the handle (a `wait/4` slice at
  most), then gives back the reader slots. Later calls on the handle
  return `{:error, :closed}`. Closing twice is `:ok`.
  """
  @spec close(t()) :: :ok
  def close(handle), do: Nif.close(handle)

  @doc "Removes the name; attached processes keep working. `{:error, :enoent}` if absent."
  @spec unlink(String.t()) :: :ok | {:error, reason()}
  def unlink(name) when is_binary(name), do: Nif.unlink(name)

  @doc """
  Inserts or updates `id -> transport`. `{:error, :enospc}` when the
  registry is full, `{:error, :enametoolong}` for an id longer than key_max.
  """
  @spec register(t(), id(), transport()) :: :ok | {:error, reason()}
  def register(handle, id, transport), do: Nif.register(handle, id, transport)

  @doc "Wait-free lookup."
  @spec get(t(), id()) :: {:ok, transport()} | {:error, :not_found | reason()}
  def get(handle, id), do: Nif.get(handle, id)

  @doc "Re-points a registered id; `{:error, :not_found}` if it is not registered."
  @spec update(t(), id(), transport()) :: :ok | {:error, :not_found | reason()}
  def update(handle, id, transport), do: Nif.update(handle, id, transport)

  @doc """
  Sets `id` to `desired` only if it is still `expected`.
  `{:error, {:mismatch, current}}` when it holds another transport,
  `{:error, :not_found}` when absent, `{:error, :eagain}` when a stalled
  reader kept the writer from finding a free entry (retry).
  """
  @spec cas(t(), id(), transport(), transport()) ::
          :ok | {:error, :not_found | {:mismatch, transport()} | reason()}
  def cas(handle, id, expected, desired), do: Nif.cas(handle, id, expected, desired)

  @doc "Removes `id`; `:ok` whether or not it was registered."
  @spec unregister(t(), id()) :: :ok | {:error, reason()}
  def unregister(handle, id), do: Nif.unregister(handle, id)

  @doc """
  Blocks until `id` is registered with a transport other than `seen`, or
  `timeout` (milliseconds or `:infinity`) passes: `{:ok, transport}` or
  `{:error, :timeout}`. A change made by any process wakes the waiter.

  Runs on a dirty I/O scheduler in slices of at most 100 ms.
  """
  @spec wait(t(), id(), transport(), timeout()) ::
          {:ok, transport()} | {:error, :timeout | reason()}
  def wait(handle, id, seen, timeout \\ :infinity)

  def wait(handle, id, seen, :infinity), do: wait_loop(handle, id, seen, :infinity)

  def wait(handle, id, seen, timeout) when is_integer(timeout) and timeout >= 0 do
    wait_loop(handle, id, seen, System.monotonic_time(:millisecond) + timeout)
  end

  defp wait_loop(handle, id, seen, deadline) do
    slice =
      case deadline do
        :infinity -> @max_slice_ms
        _ -> min(@max_slice_ms, max(0, deadline - System.monotonic_time(:millisecond)))
      end

    case Nif.wait_slice(handle, id, seen, slice) do
      {:error, :etimedout} ->
        if deadline != :infinity and System.monotonic_time(:millisecond) >= deadline,
          do: {:error, :timeout},
          else: wait_loop(handle, id, seen, deadline)

      other ->
        other
    end
  end

  @doc """
  Looks up many ids at once (overlapping their cache misses). Returns one
  result per id, in order: `{:ok, transport}` or `{:error, :not_found}`
  (or `{:error, :enametoolong}` / `{:error, :einval}` for a bad id).
  """
  @spec get_bulk(t(), [id()]) ::
          [{:ok, transport()} | {:error, reason()}] | {:error, reason()}
  def get_bulk(handle, ids) when is_list(ids), do: Nif.get_bulk(handle, ids)

  @doc """
  Every live `{id, transport}`, from one walk made while writers run: an id
  registered throughout the walk appears once; an id added or removed
  meanwhile may or may not.
  """
  @spec to_list(t()) :: {:ok, [{id(), transport()}]} | {:error, reason()}
  def to_list(handle), do: Nif.to_list(handle)

  @doc "Calls `fun.(id, transport)` for each entry of `to_list/1`."
  @spec foreach(t(), (id(), transport() -> any())) :: :ok | {:error, reason()}
  def foreach(handle, fun) when is_function(fun, 2) do
    with {:ok, list} <- to_list(handle) do
      Enum.each(list, fn {id, t} -> fun.(id, t) end)
    end
  end

  @doc "A lazy stream of `{id, transport}`: the walk (`to_list/1`) runs when it is first consumed."
  @spec stream(t()) :: Enumerable.t()
  def stream(handle) do
    Stream.flat_map([handle], fn h ->
      case to_list(h) do
        {:ok, list} -> list
        {:error, reason} -> raise ArgumentError, "connreg: walk failed: #{inspect(reason)}"
      end
    end)
  end

  @doc "Counters of the registry (`connreg_stats`), as a map."
  @spec stats(t()) :: {:ok, map()} | {:error, reason()}
  def stats(handle), do: Nif.stats(handle)

  @doc "Verifies the segment's invariants: `:ok` or `{:error, {:problems, lines}}`."
  @spec check(t()) :: :ok | {:error, {:problems, [String.t()]} | reason()}
  def check(handle), do: Nif.check(handle)

  @doc "The library's text for an error atom (`:enospc`) or a negative errno."
  @spec strerror(atom() | integer()) :: String.t()
  def strerror(rc) when is_integer(rc), do: Nif.strerror(rc)
  def strerror(:not_found), do: Nif.strerror(-2)
  def strerror(:closed), do: "the handle is closed"
  def strerror(atom) when is_atom(atom), do: Nif.strerror(-errno(atom))

  @errnos %{
    eperm: 1, enoent: 2, eintr: 4, eio: 5, e2big: 7, echild: 10, eagain: 11, enomem: 12,
    eacces: 13, ebusy: 16, eexist: 17, enfile: 23, emfile: 24, enospc: 28, erange: 34,
    enametoolong: 36, eproto: 71, eopnotsupp: 95, etimedout: 110, einval: 22
  }
  defp errno(atom), do: Map.get(@errnos, atom, 0)

  defp config(opts) do
    cap = Keyword.get(opts, :capacity, 65_536)
    key_max = Keyword.get(opts, :key_max, 64)
    mode = Keyword.get(opts, :mode, 0o600)
    threads = Keyword.get(opts, :max_threads, default_max_threads())
    flags = if Keyword.get(opts, :transport_is_pid, false), do: @transport_is_pid, else: 0

    for {k, v} <- [capacity: cap, key_max: key_max, mode: mode, max_threads: threads],
        not (is_integer(v) and v >= 0) do
      raise ArgumentError, "connreg: #{k} must be a non-negative integer, got: #{inspect(v)}"
    end

    {cap, key_max, mode, threads, flags}
  end
end
