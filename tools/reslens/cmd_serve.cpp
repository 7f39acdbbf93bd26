// reslens serve [--model M] [--port 8080] [--host 127.0.0.1]: the explorer in the browser and its
// JSON API (docs/report.md). Binds to loopback unless told otherwise; the model runs one request at
// a time on one worker thread.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "report/html_page.h"
#include "server/api.h"
#include "server/http_server.h"

namespace reslens::cli {

void register_serve(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "Explore explanations in the browser (a local web app and a JSON API)");
  auto args = std::make_shared<ModelArgs>();
  auto host = std::make_shared<std::string>("127.0.0.1");
  auto port = std::make_shared<int>(8080);
  auto max_tokens = std::make_shared<size_t>(512);
  auto example = std::make_shared<std::string>("Once upon a time");
  // ModelArgs' flags, with --model optional: the default model is used when it exists.
  cmd->add_option("-m,--model", args->model,
                   std::string("Model: a .gguf file, a llama2.c .bin, or a Hugging Face directory (default: ") +
                       server::kDefaultModelPath + " when it exists)");
  cmd->add_option("--tokenizer", args->tokenizer, "Tokenizer file (llama2.c checkpoints)");
  cmd->add_option("-t,--threads", args->threads, "Worker threads for the model (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--host", *host, "Address to listen on (default 127.0.0.1; anything else is reachable from other machines)");
  cmd->add_option("--port", *port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--max-tokens", *max_tokens, "Longest prompt accepted, in tokens")->check(CLI::Range(1, 100000));
  cmd->add_option("--example", *example, "Prompt the page suggests");
  cmd->callback([=] {
    if (!server::http_available()) {
      throw UnsupportedError("this reslens was built without its server (cpp-httplib was not found when it was configured, or RESLENS_BUILD_WEB was off; apt-get install libcpp-httplib-dev and rebuild)");
    }
    if (args->model.empty()) {
      if (!std::filesystem::exists(server::kDefaultModelPath)) {
        throw InvalidArgument(std::string("no model: pass --model PATH (the default ") + server::kDefaultModelPath +
                              "/ is not in this folder)");
      }
      args->model = server::kDefaultModelPath;
    }
    if (*host != "127.0.0.1" && *host != "localhost" && *host != "::1") {
      std::cerr << "warning: listening on " << *host << ": anyone who can reach this machine can run the model "
                << "(there is no authentication); the default is 127.0.0.1\n";
    }
    if (!report::web_page_available()) std::cerr << "warning: " << report::web_page_missing_message() << "; serving the JSON API only\n";
    const auto model = args->load();
    server::ApiOptions ao;
    ao.n_threads = args->threads;
    ao.max_prompt_tokens = *max_tokens;
    ao.example_prompt = *example;
    server::Api api(model, ao);
    server::HttpOptions ho;
    ho.host = *host;
    ho.port = *port;
    server::serve_http(api, ho, [&](int bound) {
      const std::string shown = ho.host.find(':') != std::string::npos ? "[" + ho.host + "]" : ho.host;
      std::cout << "reslens serve: http://" << shown << ":" << bound << "/ (model " << model->path().string()
                << "; Ctrl-C stops)" << std::endl;
    });
    std::cout << "reslens serve: stopped" << std::endl;
  });
}

}  // namespace reslens::cli
