# A second BEAM node (its own OS process) for the interop tests: attaches
# to the segment named by argv[0] through ConnReg.ConnectionRegistry and
# answers one command per stdin line with one "peer> ..." line.
alias ConnReg.ConnectionRegistry, as: CR

[segment] = System.argv()
{:ok, _} = CR.start_link(segment: segment, open: :open)

defmodule Peer do
  # Results with pids are printed as :local_pid (pids mean nothing to the test node).
  def show({:ok, pid}) when is_pid(pid), do: "{:ok, :local_pid}"
  def show(other), do: inspect(other)

  def reply(line), do: IO.puts("peer> " <> line)

  def loop(procs) do
    case IO.gets("") do
      :eof ->
        :ok

      line ->
        case String.split(String.trim(line), " ", parts: 2) do
          ["tag"] ->
            reply(Integer.to_string(ConnReg.Transport.boot_tag()))
            loop(procs)

          ["register_self", id] ->
            reply(show(CR.register(id, self())))
            loop(procs)

          # A process of its own, registered under id, that lives until "kill id".
          ["register_new", id] ->
            pid = spawn(fn -> receive do: (:stop -> :ok) end)
            reply(show(CR.register(id, pid)))
            loop(Map.put(procs, id, pid))

          ["kill", id] ->
            Process.exit(Map.fetch!(procs, id), :kill)
            reply("ok")
            loop(Map.delete(procs, id))

          ["get", id] ->
            reply(show(CR.get_transport_pid(id)))
            loop(procs)

          ["raw", id] ->
            reply(show(CR.get_raw_transport(id)))
            loop(procs)

          # The hazard the encoding avoids: a raw pid term from another boot.
          ["self_term"] ->
            reply(Base.encode16(:erlang.term_to_binary(self())))
            loop(procs)

          ["decode_term", hex] ->
            pid = :erlang.binary_to_term(Base.decode16!(hex))
            reply(inspect({:local, node(pid) == node(), Process.alive?(pid)}))
            loop(procs)

          ["stop"] ->
            reply(show(GenServer.stop(CR)))
            loop(procs)

          # Exit at once: no owner terminate, entries stay behind.
          ["halt"] ->
            System.halt(0)
        end
    end
  end
end

Peer.reply("ready")
Peer.loop(%{})
