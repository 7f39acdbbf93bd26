// reslens serve [--model M] [--port 8080] [--host 127.0.0.1]: the explorer in the browser and its
// JSON API (docs/report.md). Binds to loopback unless told otherwise; the model runs one request at
// a time on one worker thread. Without --model: the default model of every command
// (default_model_path(): $RESLENS_MODEL, else the shipped knowledge model).
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
  auto example = std::make_shared<std::string>();
  auto chat = std::make_shared<bool>(false);
  auto chat_template = std::make_shared<std::string>();
  auto system = std::make_shared<std::string>();
  args->add(*cmd, /*model_positional=*/false);  // -m/--model (default: default_model_path()), --tokenizer, -t
  cmd->add_option("--host", *host, "Address to listen on (default 127.0.0.1; anything else is reachable from other machines)");
  cmd->add_option("--port", *port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--max-tokens", *max_tokens, "Longest prompt accepted, in tokens")->check(CLI::Range(1, 100000));
  cmd->add_option("--example", *example, "Prompt the page suggests (default: one for the default model)");
  cmd->add_flag("--chat", *chat, "Lay every prompt out as a user message with the model's chat template (see `reslens explain --help`)");
  cmd->add_option("--chat-template", *chat_template, "Use this built-in chat layout for every prompt (implies --chat)");
  cmd->add_option("--system", *system, "A system message before every prompt (implies --chat)");
  cmd->callback([=] {
    if (!server::http_available()) {
      throw UnsupportedError("this reslens was built without its server (cpp-httplib was not found when it was configured, or RESLENS_BUILD_WEB was off; apt-get install libcpp-httplib-dev and rebuild)");
    }
    const bool default_model = args->model.empty() && args->model_opt.empty();
    if (*host != "127.0.0.1" && *host != "localhost" && *host != "::1") {
      std::cerr << "warning: listening on " << *host << ": anyone who can reach this machine can run the model "
                << "(there is no authentication); the default is 127.0.0.1\n";
    }
    if (!report::web_page_available()) std::cerr << "warning: " << report::web_page_missing_message() << "; serving the JSON API only\n";
    const auto model = args->load();
    server::ApiOptions ao;
    ao.n_threads = args->threads;
    ao.max_prompt_tokens = *max_tokens;
    ao.example_prompt = !example->empty() ? *example : default_model ? "The capital of France is" : "";
    if (*chat || !chat_template->empty() || !system->empty()) {  // resolved now: a bad name fails at start
      ao.chat = chat_template->empty() ? detect_chat_template(model->tokenizer().chat_template())
                                       : chat_template_named(*chat_template);
      ao.chat_system = *system;
    }
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
