defmodule Mix.Tasks.Compile.ConnregNif do
  @moduledoc """
  Builds `priv/connreg_nif.so` with `make` (see the Makefile).

  The library archive comes from `CONNREG_BUILD_DIR` (default: `../../build`,
  the project's own CMake build). Nothing is fetched: no Hex, no rebar.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    root = Path.expand("../..", __DIR__)

    build_dir =
      case System.get_env("CONNREG_BUILD_DIR") do
        nil -> Path.join(root, "build")
        "" -> Path.join(root, "build")
        dir -> Path.expand(dir)
      end

    erts_include =
      Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])

    make = System.find_executable("make") || Mix.raise("connreg: `make` is not installed")

    env = [
      {"CONNREG_ROOT", root},
      {"CONNREG_BUILD_DIR", build_dir},
      {"ERTS_INCLUDE_DIR", erts_include}
    ]

    {out, status} =
      System.cmd(make, ["--no-print-directory", "-C", __DIR__, "all"],
        env: env,
        stderr_to_stdout: true
      )

    cond do
      status != 0 ->
        Mix.shell().error(out)
        Mix.raise("connreg: building the NIF failed (make exited #{status})")

      String.trim(out) == "" or out =~ "Nothing to be done" ->
        {:noop, []}

      true ->
        if Mix.shell() != Mix.Shell.Quiet, do: IO.write(out)
        {:ok, []}
    end
  end

  @impl true
  def clean do
    System.cmd("make", ["--no-print-directory", "-C", __DIR__, "clean"], stderr_to_stdout: true)
    :ok
  end
end

defmodule ConnReg.MixProject do
  use Mix.Project

  def project do
    [
      app: :connreg,
      version: "1.0.0",
      elixir: "~> 1.14",
      compilers: [:connreg_nif] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      deps: [],
      test_coverage: [],
      docs: [main: "ConnReg"]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end
end
