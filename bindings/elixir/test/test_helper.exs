defmodule ConnRegTest.Helpers do
  @moduledoc false
  # Shared by the test modules: unique segment names (with the OS pid),
  # cleanup, polling, the connreg CLI, and a second BEAM OS process.

  import ExUnit.Callbacks, only: [on_exit: 1]

  @doc "A fresh segment name; unlinked when the test exits, pass or fail."
  def segment(tag) do
    name = "/crx-#{tag}-#{System.pid()}-#{System.unique_integer([:positive])}"
    on_exit(fn -> ConnReg.unlink(name) end)
    name
  end

  @doc "A fresh registry (small), closed and unlinked at exit."
  def registry(tag, opts \\ []) do
    name = segment(tag)
    {:ok, h} = ConnReg.create(name, Keyword.merge([capacity: 1024, key_max: 64], opts))
    on_exit(fn -> ConnReg.close(h) end)
    {name, h}
  end

  @doc "Polls fun until it returns true, at most timeout ms."
  def eventually(fun, timeout \\ 3_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_eventually(fun, deadline)
  end

  defp do_eventually(fun, deadline) do
    cond do
      fun.() -> true
      System.monotonic_time(:millisecond) > deadline -> false
      true -> Process.sleep(5) && do_eventually(fun, deadline)
    end
  end

  def build_dir do
    case System.get_env("CONNREG_BUILD_DIR") do
      dir when dir in [nil, ""] -> Path.expand("../../build", File.cwd!())
      dir -> Path.expand(dir)
    end
  end

  @doc "The connreg CLI of the build directory (the tests need it: no skipping)."
  def cli do
    path = Path.join(build_dir(), "connreg")

    unless File.regular?(path) do
      raise "#{path} not found: build the connreg CLI (target connreg-cli) or set CONNREG_BUILD_DIR"
    end

    path
  end

  @doc "Runs the CLI: {stdout, exit status}."
  def cli(args), do: System.cmd(cli(), args, stderr_to_stdout: true)

  @doc """
  Starts `elixir` in a new OS process running test/support/peer.exs with
  this project's compiled code on its path. Returns a port; talk to it
  with peer_call/2 (one command line in, one result line out).
  """
  def peer_start(segment) do
    elixir = System.find_executable("elixir") || raise "elixir not found"
    ebin = Path.join(:code.lib_dir(:connreg), "ebin") |> to_string()
    script = Path.expand("support/peer.exs", __DIR__)

    port =
      Port.open({:spawn_executable, elixir}, [
        :binary,
        :exit_status,
        {:line, 65_536},
        :use_stdio,
        :stderr_to_stdout,
        args: ["-pa", ebin, script, segment]
      ])

    on_exit(fn -> if Port.info(port), do: Port.close(port) end)
    "ready" = peer_read(port, 20_000)
    port
  end

  @doc """
  Evaluates `code` in a new `elixir` OS process started with the emulator
  flags `erl_flags` and this project's compiled code on its path; returns
  its stdout.
  """
  def elixir_eval(code, erl_flags) do
    elixir = System.find_executable("elixir") || raise "elixir not found"
    ebin = Path.join(:code.lib_dir(:connreg), "ebin") |> to_string()
    {out, 0} = System.cmd(elixir, ["--erl", erl_flags, "-pa", ebin, "-e", code])
    out
  end

  def peer_call(port, command, timeout \\ 10_000) do
    true = Port.command(port, command <> "\n")
    peer_read(port, timeout)
  end

  defp peer_read(port, timeout) do
    receive do
      {^port, {:data, {:eol, "peer> " <> line}}} -> line
      {^port, {:data, {:eol, _noise}}} -> peer_read(port, timeout)
      {^port, {:exit_status, status}} -> raise "peer exited with status #{status}"
    after
      timeout -> raise "peer did not answer within #{timeout} ms"
    end
  end

  @doc "Waits for the peer's OS process to exit; returns its status."
  def peer_exit(port, timeout \\ 10_000) do
    receive do
      {^port, {:exit_status, status}} -> status
      {^port, {:data, _}} -> peer_exit(port, timeout)
    after
      timeout -> raise "peer did not exit within #{timeout} ms"
    end
  end
end

ExUnit.start()
