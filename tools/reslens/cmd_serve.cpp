// reslens serve [--model M] [--port 8080] [--host 127.0.0.1]: the explorer in the browser and its
// JSON API (docs/report.md). Binds to loopback unless told otherwise; the model runs one request at
// a time on one worker thread. Without --model: the default model of every command
// (default_model_path(): $RESLENS_MODEL, else the shipped knowledge model).
#include <unistd.h>

#include <cstdlib>
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
  auto allow_hosts = std::make_shared<std::vector<std::string>>();
  auto token = std::make_shared<std::string>();
  auto request_timeout = std::make_shared<double>(10);
  args->add(*cmd, /*model_positional=*/false);  // -m/--model (default: default_model_path()), --tokenizer, -t
  cmd->add_option("--host", *host, "Address to listen on (default 127.0.0.1; anything else is reachable from other machines)");
  cmd->add_option("--port", *port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  cmd->add_option("--max-tokens", *max_tokens, "Longest prompt accepted, in tokens")->check(CLI::Range(1, 100000));
  cmd->add_option("--example", *example, "Prompt the page suggests (default: one for the default model)");
  cmd->add_flag("--chat", *chat, "Lay every prompt out as a user message with the model's chat template (see `reslens explain --help`)");
  cmd->add_option("--chat-template", *chat_template, "Use this built-in chat layout for every prompt (implies --chat)");
  cmd->add_option("--system", *system, "A system message before every prompt (implies --chat)");
  cmd->add_option("--allow-host", *allow_hosts,
                  "A host name the page may be opened by, besides IP addresses, localhost and this machine's name "
                  "(requests naming any other host get 403: DNS rebinding)");
  cmd->add_option("--token", *token,
                  "Require this secret on every API request (Authorization: Bearer TOKEN) but a closing page's cancel of its "
                  "job (its id is the credential); the page takes it from "
                  "the printed address. Default: $RESLENS_SERVE_TOKEN; none on 127.0.0.1");
  cmd->add_option("--request-timeout", *request_timeout, "Seconds a client has to send its whole request (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  cmd->callback([=] {
    const bool default_model = args->model.empty() && args->model_opt.empty();
    if (token->empty()) {
      if (const char* env = std::getenv("RESLENS_SERVE_TOKEN")) *token = env;
    }
    if (*host != "127.0.0.1" && *host != "localhost" && *host != "::1" && token->empty()) {
      std::cerr << "warning: listening on " << *host << " without --token: anyone who can reach this machine can run "
                << "the model; the default is 127.0.0.1\n";
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
    ao.host_names = *allow_hosts;
    ao.host_names.push_back(*host);  // --host given as a name
    char hostname[256] = {};
    if (gethostname(hostname, sizeof hostname - 1) == 0 && hostname[0] != 0) ao.host_names.emplace_back(hostname);
    ao.token = *token;
    server::Api api(model, ao);
    server::HttpOptions ho;
    ho.host = *host;
    ho.port = *port;
    ho.request_timeout_s = *request_timeout;
    server::serve_http(api, ho, [&](int bound) {
      const std::string shown = ho.host.find(':') != std::string::npos ? "[" + ho.host + "]" : ho.host;
      std::cout << "reslens serve: http://" << shown << ":" << bound << "/" << (ao.token.empty() ? "" : "#token=" + ao.token)
                << " (model " << model->path().string()
                << "; Ctrl-C stops)" << std::endl;
    });
    std::cout << "reslens serve: stopped" << std::endl;
  });
}

}  // namespace reslens::cli
