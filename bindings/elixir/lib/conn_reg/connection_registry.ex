defmodule ConnReg.ConnectionRegistry do
  @moduledoc """
  The `ConnectionRegistry` API (connection id -> transport pid) over a
  connreg segment that C gateways, other BEAM nodes and tools on the host
  share:

      {:ok, _} = ConnReg.ConnectionRegistry.start_link(segment: "/gw-sessions")
      ref = make_ref()
      :ok = ConnReg.ConnectionRegistry.register(ref, self())
      {:ok, pid} = ConnReg.ConnectionRegistry.get_transport_pid(ref)
      :ok = ConnReg.ConnectionRegistry.update_transport_pid(ref, other_pid)
      :ok = ConnReg.ConnectionRegistry.unregister(ref)
      {:error, :not_found} = ConnReg.ConnectionRegistry.get_transport_pid(ref)

  Functions and return values are those of the Elixir `Registry`-based
  original:

    * `register/2` inserts or replaces, and returns `:ok`
      (`{:error, :enospc}` when the segment is full,
      `{:error, :enametoolong}` for an id whose encoding exceeds key_max);
    * `get_transport_pid/1` returns `{:ok, pid}` or `{:error, :not_found}`,
      and `{:error, :foreign_transport}` for an id whose transport was
      written by another BEAM node, a C program, or a previous boot of this
      node (see `ConnReg.Transport`); `get_raw_transport/1` returns the
      64-bit value instead;
    * `unregister/1` returns `:ok` whether or not the id was registered;
    * `update_transport_pid/2` returns `:ok` or `{:error, :not_found}`.

  Each takes an optional last argument, the server name given to
  `start_link/1` (default `ConnReg.ConnectionRegistry`). Calling them
  before `start_link/1` (or after the owner stopped) raises
  `ArgumentError`, as `Registry` does for an unknown registry.

  ## Connection ids

  Any term. A binary id that does not start with byte 131 is stored as its
  bytes, so a C gateway or the `connreg` CLI that registers `"conn-42"` and
  Elixir code that looks up `"conn-42"` meet on the same entry. Every other
  term (references, tuples, atoms, the empty binary, binaries starting
  with 131) is stored as `:erlang.term_to_binary(id, [:deterministic,
  minor_version: 2])`, which always starts with 131; so the two forms never
  collide. `key/1` gives the stored bytes. A reference takes 30-60 bytes,
  depending on the node name: the default `:key_max` of a registry created
  here is 128.

  ## Transports, liveness

  A transport is a local pid, encoded by `ConnReg.Transport` (a per-boot
  tag plus the pid's number). The owner process started by `start_link/1`
  monitors every transport registered through this module on this node;
  when one dies, each id that still points at it is removed (a
  compare-and-swap to a reserved tombstone value, then an unregister), as
  `Registry` removes the keys of a dead process. An id re-registered to
  another transport meanwhile is left alone. An entry of a dead process can
  be seen until the owner has processed the `:DOWN` message, as with
  `Registry`. When the owner stops, it removes every entry this boot wrote;
  when it starts, it adopts this boot's entries already in the segment
  (after a crash of the previous owner): it monitors the live transports
  and removes the dead ones.

  Limits. connreg has no conditional unregister, so the removal after a
  death is two steps (compare-and-swap to the tombstone, then unregister): a
  `register/2` of the same id by another process landing between the two
  is removed as well. Entries written by a BEAM node that has exited
  altogether stay until someone unregisters them (they read as
  `{:error, :foreign_transport}`). Run one owner per segment per node.

  The owner holds the registry handle; lookups and writes do not go
  through it: callers find the handle in `:persistent_term` and call the
  NIF directly. Only the monitor bookkeeping (one asynchronous message per
  write) reaches the owner.
  """

  use GenServer

  alias ConnReg.Transport

  @default_segment "/connreg-elixir"
  @remove_retry_ms 50

  @type connection_id :: term()
  @type server :: atom()

  # ---------------------------------------------------------------------
  # Start
  # ---------------------------------------------------------------------

  @doc """
  A child spec for a supervisor. `opts` as for `start_link/1`; the child id
  is the server name.
  """
  def child_spec(opts \\ []) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]},
      type: :worker,
      restart: :permanent,
      shutdown: 5_000
    }
  end

  @doc """
  Starts the owner of the registry handle, registered as `opts[:name]`
  (default `ConnReg.ConnectionRegistry`).

  Options: `:segment` (shared-memory name, default `"/connreg-elixir"`),
  `:open` (`:open_or_create`, the default; `:create`; or `:open`),
  `:capacity` (default 65536), `:key_max` (default 128), `:mode`,
  `:max_threads` (as `ConnReg.create/2`), `:unlink_on_stop` (remove the
  segment's name when the owner stops; default `false`).
  """
  def start_link(opts \\ []) do
    name = Keyword.get(opts, :name, __MODULE__)
    GenServer.start_link(__MODULE__, Keyword.put(opts, :name, name), name: name)
  end

  # ---------------------------------------------------------------------
  # The API (runs in the caller)
  # ---------------------------------------------------------------------

  @doc "Registers `connection_id -> transport_pid` (replacing any transport). `:ok`."
  @spec register(connection_id(), pid(), server()) :: :ok | {:error, atom()}
  def register(connection_id, transport_pid, server \\ __MODULE__) when is_pid(transport_pid) do
    {h, owner, _tag} = lookup!(server)
    key = key(connection_id)
    value = Transport.encode(transport_pid)

    case ConnReg.register(h, key, value) do
      :ok ->
        GenServer.cast(owner, {:watch, key, transport_pid, value})
        :ok

      {:error, :closed} ->
        not_started!(server)

      {:error, _} = error ->
        error
    end
  end

  @doc """
  The transport pid of `connection_id`: `{:ok, pid}`, `{:error, :not_found}`,
  or `{:error, :foreign_transport}` when the transport was written by
  another node, program or boot.
  """
  @spec get_transport_pid(connection_id(), server()) ::
          {:ok, pid()} | {:error, :not_found | :foreign_transport}
  def get_transport_pid(connection_id, server \\ __MODULE__) do
    {h, _owner, tag} = lookup!(server)

    case ConnReg.get(h, key(connection_id)) do
      {:ok, value} ->
        case Transport.decode(value, tag) do
          {:ok, _pid} = ok -> ok
          {:error, :tombstone} -> {:error, :not_found}
          {:error, :foreign_transport} = foreign -> foreign
        end

      error ->
        lookup_error(error, server)
    end
  end

  @doc "The 64-bit transport of `connection_id` as stored: `{:ok, integer}` or `{:error, :not_found}`."
  @spec get_raw_transport(connection_id(), server()) ::
          {:ok, non_neg_integer()} | {:error, :not_found | atom()}
  def get_raw_transport(connection_id, server \\ __MODULE__) do
    {h, _owner, _tag} = lookup!(server)

    case ConnReg.get(h, key(connection_id)) do
      {:ok, _} = ok -> ok
      error -> lookup_error(error, server)
    end
  end

  defp lookup_error({:error, :not_found}, _server), do: {:error, :not_found}
  defp lookup_error({:error, :enametoolong}, _server), do: {:error, :not_found}
  defp lookup_error({:error, :closed}, server), do: not_started!(server)
  defp lookup_error({:error, _} = error, _server), do: error

  @doc "Removes `connection_id`. Always `:ok`."
  @spec unregister(connection_id(), server()) :: :ok
  def unregister(connection_id, server \\ __MODULE__) do
    {h, owner, _tag} = lookup!(server)
    key = key(connection_id)

    case ConnReg.unregister(h, key) do
      :ok -> GenServer.cast(owner, {:watch, key, nil, nil})
      {:error, :closed} -> not_started!(server)
      {:error, _} -> :ok
    end

    :ok
  end

  @doc "Re-points a registered `connection_id`: `:ok` or `{:error, :not_found}`."
  @spec update_transport_pid(connection_id(), pid(), server()) :: :ok | {:error, :not_found}
  def update_transport_pid(connection_id, new_transport_pid, server \\ __MODULE__)
      when is_pid(new_transport_pid) do
    {h, owner, _tag} = lookup!(server)
    key = key(connection_id)
    value = Transport.encode(new_transport_pid)

    case ConnReg.update(h, key, value) do
      :ok ->
        GenServer.cast(owner, {:watch, key, new_transport_pid, value})
        :ok

      {:error, :closed} ->
        not_started!(server)

      {:error, :enametoolong} ->
        {:error, :not_found}

      {:error, _} = error ->
        error
    end
  end

  @doc "The bytes a connection id is stored as (see \"Connection ids\")."
  @spec key(connection_id()) :: binary()
  def key(<<first, _::binary>> = id) when first != 131, do: id
  def key(id), do: :erlang.term_to_binary(id, [:deterministic, minor_version: 2])

  @doc "The `ConnReg` handle the owner holds (for the raw API: `ConnReg.stats/1`, ...)."
  @spec handle(server()) :: ConnReg.t()
  def handle(server \\ __MODULE__), do: elem(lookup!(server), 0)

  @doc false
  # Returns once the owner has handled every message this caller sent before.
  def sync(server \\ __MODULE__), do: GenServer.call(server, :sync)

  @doc false
  # Transports the owner monitors: %{pid => [key]}.
  def watched(server \\ __MODULE__), do: GenServer.call(server, :watched)

  defp lookup!(server) do
    case :persistent_term.get({__MODULE__, server}, nil) do
      {_h, _owner, _tag} = found -> found
      nil -> not_started!(server)
    end
  end

  defp not_started!(server) do
    raise ArgumentError,
          "unknown registry: #{inspect(server)}. Either the registry name is invalid " <>
            "or ConnReg.ConnectionRegistry is not started"
  end

  # ---------------------------------------------------------------------
  # The owner
  # ---------------------------------------------------------------------

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    name = Keyword.fetch!(opts, :name)
    segment = Keyword.get(opts, :segment, @default_segment)
    conf = [key_max: 128] |> Keyword.merge(Keyword.take(opts, [:capacity, :key_max, :mode, :max_threads]))

    opened =
      case Keyword.get(opts, :open, :open_or_create) do
        :open_or_create ->
          with {:ok, h, _created} <- ConnReg.open_or_create(segment, conf), do: {:ok, h}

        :create ->
          ConnReg.create(segment, conf)

        :open ->
          ConnReg.open(segment)
      end

    case opened do
      {:ok, h} ->
        state = %{
          name: name,
          handle: h,
          segment: segment,
          unlink_on_stop: Keyword.get(opts, :unlink_on_stop, false),
          pids: %{},
          keys: %{}
        }

        :persistent_term.put({__MODULE__, name}, {h, self(), Transport.boot_tag()})
        {:ok, adopt(state)}

      {:error, reason} ->
        {:stop, {:connreg, reason, segment}}
    end
  end

  @impl true
  def handle_cast({:watch, key, pid, value}, state), do: {:noreply, sync_key(state, key, pid, value)}

  @impl true
  def handle_call(:sync, _from, state), do: {:reply, :ok, state}

  def handle_call(:watched, _from, state) do
    {:reply, Map.new(state.pids, fn {pid, {_ref, _value, keys}} -> {pid, MapSet.to_list(keys)} end),
     state}
  end

  @impl true
  def handle_info({:DOWN, ref, :process, pid, _reason}, state) do
    case Map.get(state.pids, pid) do
      {^ref, value, keys} ->
        Enum.each(keys, &remove_value(state.handle, &1, value))
        {:noreply, %{state | pids: Map.delete(state.pids, pid), keys: Map.drop(state.keys, MapSet.to_list(keys))}}

      _ ->
        {:noreply, state}
    end
  end

  def handle_info({:remove, key, value}, state) do
    remove_value(state.handle, key, value)
    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state) do
    :persistent_term.erase({__MODULE__, state.name})

    case ConnReg.to_list(state.handle) do
      {:ok, entries} ->
        for {key, value} <- entries, Transport.local?(value) do
          remove_value(state.handle, key, value)
        end

      _ ->
        :ok
    end

    ConnReg.close(state.handle)
    if state.unlink_on_stop, do: ConnReg.unlink(state.segment)
    :ok
  end

  # Brings the watch on `key` in line with the registry: watch `pid` if the
  # id now holds `value` (the transport a write of this node put there),
  # and drop the watch of a transport the id no longer holds. The value
  # read here is at least as new as the write that sent the message, so a
  # transport the id no longer holds needs no watch for it; a later write
  # sends its own message.
  defp sync_key(state, key, pid, value) do
    current =
      case ConnReg.get(state.handle, key) do
        {:ok, v} -> v
        _ -> nil
      end

    state =
      case Map.get(state.keys, key) do
        {old_pid, old_value} when old_value != current -> drop_watch(state, old_pid, key)
        _ -> state
      end

    if pid != nil and current == value and not Map.has_key?(state.keys, key),
      do: add_watch(state, pid, value, key),
      else: state
  end

  defp add_watch(state, pid, value, key) do
    pids =
      case Map.get(state.pids, pid) do
        {ref, ^value, keys} -> Map.put(state.pids, pid, {ref, value, MapSet.put(keys, key)})
        nil -> Map.put(state.pids, pid, {Process.monitor(pid), value, MapSet.new([key])})
      end

    %{state | pids: pids, keys: Map.put(state.keys, key, {pid, value})}
  end

  defp drop_watch(state, pid, key) do
    keys = Map.delete(state.keys, key)

    case Map.get(state.pids, pid) do
      {ref, value, set} ->
        set = MapSet.delete(set, key)

        if MapSet.size(set) == 0 do
          Process.demonitor(ref, [:flush])
          %{state | pids: Map.delete(state.pids, pid), keys: keys}
        else
          %{state | pids: Map.put(state.pids, pid, {ref, value, set}), keys: keys}
        end

      nil ->
        %{state | keys: keys}
    end
  end

  # Removes `key` if it still holds `value` (a transport that died, or the
  # tombstone of a removal left half done).
  defp remove_value(h, key, value) do
    tomb = Transport.tombstone()
    result = if value == tomb, do: :ok, else: ConnReg.cas(h, key, value, tomb)

    case result do
      :ok ->
        ConnReg.unregister(h, key)

      {:error, :eagain} ->
        # A stalled reader kept the writer from a free entry: try again soon.
        Process.send_after(self(), {:remove, key, value}, @remove_retry_ms)

      _ ->
        :ok
    end
  end

  # Entries this boot wrote before this owner started (a previous owner
  # crashed): watch the live transports, remove the dead ones and any
  # removal left half done.
  defp adopt(state) do
    case ConnReg.to_list(state.handle) do
      {:ok, entries} ->
        Enum.reduce(entries, state, fn {key, value}, acc ->
          case Transport.decode(value) do
            {:ok, pid} ->
              if Process.alive?(pid) do
                add_watch(acc, pid, value, key)
              else
                remove_value(acc.handle, key, value)
                acc
              end

            {:error, :tombstone} ->
              remove_value(acc.handle, key, value)
              acc

            {:error, :foreign_transport} ->
              acc
          end
        end)

      {:error, _} ->
        state
    end
  end
end
