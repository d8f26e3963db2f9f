%% Installed by tgstack.hybrid.rabbitmq. Checks a candidate rabbitmq.conf the way RabbitMQ does when it
%% boots: the file is mapped through the Cuttlefish schemas of every installed plugin, which refuses
%% unknown keys and values of the wrong type. Exits 0 when the file is accepted, 1 with the reasons.
%%   escript tgstack_rabbitmq_checkconf.escript /path/to/candidate.conf
main([File]) ->
    [Base | _] = lists:reverse(lists:sort(filelib:wildcard("/usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins"))),
    code:add_pathsa(filelib:wildcard(filename:join(Base, "*/ebin"))),
    Schema = cuttlefish_schema:files(filelib:wildcard(filename:join(Base, "*/priv/schema/*.schema"))),
    case cuttlefish_conf:files([File]) of
        {errorlist, Errors} -> refuse(parse, Errors);
        Conf ->
            case cuttlefish_generator:map(Schema, Conf) of
                {error, Phase, {errorlist, Errors}} -> refuse(Phase, Errors);
                {error, Phase, Other} -> refuse(Phase, [Other]);
                _ -> halt(0)
            end
    end;
main(_) ->
    io:format(standard_error, "usage: escript tgstack_rabbitmq_checkconf.escript FILE~n", []),
    halt(2).

refuse(Phase, Errors) ->
    io:format(standard_error, "RabbitMQ refused the configuration (~p):~n", [Phase]),
    [io:format(standard_error, "  ~ts~n", [cuttlefish_error:xlate(E)]) || E <- Errors],
    halt(1).
